"""Reading client documents, then judging them.

Document verification used to trust what the uploader typed (the kind, the expiry date, the
issue date). A screenshot of a sign-in page passed as a passport. Here the file itself is
read, and the verdict comes from what it says:

- ``pdf_text``: the text layer of a PDF (pypdf), plus the images of a scanned PDF;
- ``ocr``: text from an image (rapidocr-onnxruntime; its models ship inside the wheel, so
  nothing is downloaded at run time), loaded once per worker process, on first use;
- ``mrz``: the machine-readable zone of a passport (TD3) or an ID card (TD1/TD2), found in
  that text and checked with the ``mrz`` package (check digits, document type);
- ``address``: the dates and the client's name in a proof of address;
- ``names``: the screening name matcher (transliteration, word order) on one pair of names;
- ``reader``: caps on bytes, pages and pixels, a thread with a timeout;
- ``verdicts``: machine_verified, needs_review or rejected, each with reasons for staff and
  plain words for the client.

A file that cannot be read is an answer (needs_review), never an error: nothing here raises
past ``reader.DocumentReader.read``.
"""
