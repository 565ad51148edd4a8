"""The console: a web page to watch a model learn, listen to its music and compose with it.

Its files are `static/` (package data); `static_files` serves them and `/console/fetch` for
the local front door (`make serve`: http://127.0.0.1:8000/) and for `opencomposer console`
(`server`: the page in front of any stack, requests signed for a deployed API).
"""
