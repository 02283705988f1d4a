"""``emollama serve``: the analysis behind a REST API and a web page, for a lab's shared machine.

Layout (data flows one way): :mod:`~emollama.serve.uploads` streams a multipart upload into a
private temporary folder with every limit checked on the way in; :mod:`~emollama.serve.workers`
keeps a few worker processes that load the models once and run one analysis at a time each, behind
a bounded queue; :mod:`~emollama.serve.app` is the FastAPI app that ties the two to HTTP and serves
the page in ``static/``. Nothing here prints: the server logs through :mod:`logging`.
"""
