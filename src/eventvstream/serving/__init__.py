"""Everything that exists only for ``evs serve``: the engine (models loaded once), live sessions
and the shared encoder thread, upload jobs, the stream registry, server metrics, and alerts
(``serving/alerts/``: watches and their deliveries). ``api/`` reaches it only through
:class:`~eventvstream.serving.facade.EngineFacade`."""
