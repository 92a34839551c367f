"""aiohttp routes the bot serves: the live viewer page and the HeyGen webhook."""
