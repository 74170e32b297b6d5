"""The file path: segmenter, trigger policies, caption worker, timeline report, and the one
ingest step (store -> describe -> caption -> tell listeners) that every path shares."""

from eventvstream.pipeline.segmenter import Segmenter, segment_file

__all__ = ["Segmenter", "segment_file"]
