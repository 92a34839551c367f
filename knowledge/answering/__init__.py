"""Answering: question (+ thread history) -> streamed cited answer (`answer.Answerer`), with the
offline composer, the LLM path, sentence splitting and the spoken variant."""
