"""The streaming engine behind `AsyncPipeline.stream_outputs()`, one stage per module:
records -> `_chunker` -> pushes (`_engine`, paced by `_window`) -> server -> pulls (`_engine`)
-> `_ordering` -> the consumer (`_stream`). Progress lives in `_state`."""
