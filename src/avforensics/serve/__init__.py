"""serve room (see DESIGN.md): `avforensics serve`, an HTTP API and a web page over a persistent job store.

app.py builds the FastAPI application; store.py keeps jobs in SQLite; worker.py runs them in processes that
call `avforensics.inference` (the same scoring as `avforensics detect`); uploads.py streams uploads to disk.
"""
