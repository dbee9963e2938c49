"""A differential check of two OSS endpoints: the sandbox against OSS, or any two.

``python -m tests.conformance --a ENDPOINT_A --b ENDPOINT_B`` sends the same scripted list of
requests (:mod:`tests.conformance.cases`) to both and prints a table: each request, what each
side answered (only the fields that must not differ between servers) and whether they agree.
See docs/CONFORMANCE.md. The files here are not named ``test_*``: pytest does not collect them;
``tests/integration/test_conformance.py`` runs the list against the sandbox.
"""
