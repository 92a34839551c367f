"""Avatar delivery: live sessions, speech, video jobs (see `bot.avatar.delivery`)."""
