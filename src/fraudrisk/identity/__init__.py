"""People on the platform: users, roles, logins with MFA, sessions and tokens, the audit log.

- ``roles`` — the roles and the permission matrix (``docs/permissions.md`` is made from it).
- ``accounts`` — users: create (TOTP enrolment shown once), disable, role, reset MFA.
- ``sessions`` — login (Argon2id password + TOTP or recovery code, lockout), sessions and
  personal API tokens (stored hashed, expiring, revocable), authentication of a request.
- ``oidc`` — corporate login by OpenID Connect (Cognito): code flow with PKCE, the ID token
  verified, groups mapped to roles, users provisioned just in time, a normal session.
- ``principal`` — who is acting and what they may do.
- ``audit`` — the append-only, hash-chained audit log of every action by a person.
- ``hashing`` / ``totp`` / ``sealing`` — password and token hashes, TOTP codes, sealed seeds.
- ``tables`` — the identity tables (made by the migrations of ``io.database``).
- ``service`` — :class:`Identity`, the three together over one database.

May import ``io``, ``config`` and the base modules.
"""
