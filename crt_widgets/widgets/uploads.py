"""What a file upload widget received, read one way for every upload of the app.

>>> import ipywidgets as w
>>> upload = w.FileUpload()
>>> take_upload({"new": [{"name": "a.csv", "content": b"x,y\\n", "size": 4}]}, upload)
('a.csv', b'x,y\\n', 4)
"""
from __future__ import annotations

import ipywidgets as w


def take_upload(change: dict, widget: w.FileUpload) -> tuple[str, bytes, int] | None:
    """The first uploaded file's name, bytes and size as the browser declared it (``None`` when the change
    empties the widget), and the widget emptied so that the next file, the same one corrected included,
    is seen as new. ipywidgets 7 gives a dict of files, 8 a tuple; files are dicts or objects."""
    files = change["new"]
    if not files:
        return None
    f = files[0] if isinstance(files, (list, tuple)) else list(files.values())[0]
    name = f.get("name", "the file") if isinstance(f, dict) else getattr(f, "name", "the file")
    content = bytes(f["content"] if isinstance(f, dict) else f.content)
    size = f.get("size") if isinstance(f, dict) else getattr(f, "size", None)
    widget.value = ()
    return name, content, int(size) if isinstance(size, (int, float)) else len(content)
