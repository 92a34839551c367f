"""Answering: question (+ thread history) -> streamed cited answer (`answer.Answerer`), with the
offline composer, the LLM path, sentence splitting and the avatar's script (`spoken`, with
`spoken_forms` for how code, paths and links are said)."""
