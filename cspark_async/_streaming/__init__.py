"""The streaming engine behind `AsyncPipeline.stream_outputs()`, one stage per module:

    records -> `_chunker` -> queue -> `_pushers` (paced by `_window`) -> server (`_adapter`)
            -> `_puller` (`_counters`, re-pushes via the queue) -> `_ordering` -> `_stream`

`_engine` wires the stages and is the only writer of the books and of `_state`; `_watchdog`
ends a stalled stream; `_options` and `_results` are the stream's options and results."""
