"""Language: decoder backends behind one protocol, prompts, and question answering.

Sits above memory in the data flow (media -> perception -> events -> memory -> language -> api):
it reads events from the memory bank and writes captions back to it, and never imports api.
"""

from eventvstream.language.base import ChatMessage, Decoder, DecoderInfo, GenerationRequest
from eventvstream.language.factory import load_decoder

__all__ = ["ChatMessage", "Decoder", "DecoderInfo", "GenerationRequest", "load_decoder"]
