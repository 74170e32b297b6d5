"""The server half: everything only `evs serve` needs."""
