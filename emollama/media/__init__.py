"""Decoding media files and reading subtitles: the first stage of the data flow."""
