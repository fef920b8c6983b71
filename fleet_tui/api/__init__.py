"""Headless HTTP face: identity (JWT/JWKS, key rotation), tier and ownership checks, routes.

api imports domain, config and engine only; never store or infra.
"""
