"""gradelab as an LTI 1.3 tool (LTI Advantage): launched from Moodle or Canvas, the course's
members read through NRPS, grades passed back through AGS.

- ``config``: the platform's registration (issuer, client id, deployment ids, its URLs), kept in
  ``.gradelab/lti/platform.json``; the tool's URLs an LMS asks for.
- ``keys``: the tool's RSA keys (made on first start, rotatable) and its JWKS.
- ``launch``: OIDC login initiation and the launch (the id_token validated in full), the routes.
- ``roster``: who a launch or NRPS names, mapped onto stable roster ids and merged with the CSV.
- ``services``: the OAuth2 client-credentials token and the JSON calls to the platform.
- ``scores``: the outbox of score posts (a journal like the grading queue) and its sender.

The JWT work is PyJWT's (signature, ``exp``/``iat`` with leeway, ``aud``, ``iss``) over the
``cryptography`` package's RSA, and the platform's keys come through ``jwt.PyJWKClient``: nothing
here signs or verifies by hand. pylti1p3 was not taken: it has no Starlette adapter and its
session/cookie abstractions would have to be rewritten anyway around our signed cookies.
"""
