"""The Slack surface: a bolt `AsyncApp` whose listeners parse, call a service, and render.

listeners/   events (mentions, DMs, thread follow-ups, files), commands, actions
asking       a question -> a streamed, cited answer in its thread (plus live speech)
videos       /ask-video, "Make a video", and the DeliverySink avatar delivery reports to
admin        /knowledge and files sent in a DM (admins only)
blocks       every Block Kit message; mrkdwn converts the answer's Markdown
markup       Slack markup in questions -> plain text; routing: which events are answered
streaming    chat_stream with a post + update fallback; uploads: capped, Slack-only downloads
limits, failures, services   rate limits, failures in words, what listeners work with
"""
