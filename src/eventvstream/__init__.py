"""Event-VStream: streaming video understanding that thinks in events.

Data flows one way: media -> perception -> events -> memory -> language -> api.
"""

__version__ = "0.1.0"
