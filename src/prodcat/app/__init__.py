"""The web app: categorize a product or a catalog, and read a model's report.

    $ prodcat app models/demo --port 8501

or from Python:

    >>> from prodcat.app.launch import launch
    >>> launch("models/demo", host="127.0.0.1", port=8501)   # doctest: +SKIP

`streamlit_app.py` is the Streamlit script; `uploads` (an uploaded catalog to
predictions) and `model_report` (a model directory's report and training
curves) hold what it does without Streamlit, so they are tested as plain
functions.
"""
