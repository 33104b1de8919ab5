"""Verification of the JWT + query_hash scheme Upbit and Bithumb share, for dialects.

Sources: docs.upbit.com "인증" (Bearer JWT signed with the secret key, claims
``access_key``, ``nonce`` (a UUID, single use), and when the request has parameters
``query_hash`` = hex digest of the query string, ``query_hash_alg`` = ``SHA512``; for a
JSON body the same ``k=v&...`` string of its fields, lists as ``k[]=v``);
apidocs.bithumb.com "인증 헤더 만들기" (the same, plus a ``timestamp`` claim in ms, and the
example hashes ``urlencode(params)``). Written with PyJWT and hashlib directly, never
with exbus's signer.

Interface (stable; used by the Bithumb and Upbit dialects)::

    verified = verify_jwt_request(core, req, JwtRules(timestamp_claim="timestamp"))
    verified.account  # the Account of access_key
    verified.params   # {name: value, or [values] for k[]=v}, from the query or JSON body
    verified.claims   # the token's verified claims

Every failure raises :class:`JwtRefusal`, a :class:`~services.simulator.core.Refusal` of a
venue-neutral kind (bad_key, bad_signature, expired, nonce, bad_request) carrying a
``reason`` the dialect renders as the venue's error name:

==================  ============  ==============================================
reason              kind          meaning
==================  ============  ==============================================
``no_token``        bad_key       no ``Authorization: Bearer`` header
``bad_token``       bad_signature not a JWT, or no nonce
``unknown_key``     bad_key       ``access_key`` of no account
``signature``       bad_signature signature does not verify with the secret
``query_hash``      bad_signature query_hash missing, wrong, or for other params
``nonce_used``      nonce         nonce seen before for this key
``no_timestamp``    bad_signature the rules want a timestamp claim and it is absent
``expired``         expired       timestamp outside the rules' window
``body``            bad_request   a body that is not a JSON object
==================  ============  ==============================================
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote, unquote_plus, urlencode

import jwt

from services.simulator.config import Account
from services.simulator.core import Refusal, RefusalKind, VenueCore
from services.simulator.dialect import Req

Reason = Literal["no_token", "bad_token", "unknown_key", "signature", "query_hash", "nonce_used",
                 "no_timestamp", "expired", "body"]


class JwtRefusal(Refusal):
    """A Refusal from :func:`verify_jwt_request`, with the precise ``reason``."""

    def __init__(self, kind: RefusalKind, reason: Reason, detail: str) -> None:
        super().__init__(kind, detail)
        self.reason: Reason = reason


@dataclass(frozen=True)
class JwtRules:
    """What differs between venues using the scheme."""

    algorithms: tuple[str, ...] = ("HS256", "HS512")
    """Signature algorithms accepted (Upbit: HS256/HS512; Bithumb documents HS256)."""
    hash_algs: tuple[str, ...] = ("SHA512",)
    """Accepted ``query_hash_alg`` values."""
    timestamp_claim: str | None = None
    """Name of a required ms timestamp claim (Bithumb ``timestamp``), or None (Upbit)."""
    window_ms: int = 30_000
    """How far behind the venue's clock a timestamp may be (ahead: at most 1 s)."""


@dataclass
class Verified:
    account: Account
    claims: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    """The parameters in request order, as hashed (``k[]`` keys for lists)."""


def body_pairs(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A JSON body as the ordered (key, value) pairs its query_hash covers."""
    out = []
    for k, v in body.items():
        if v is None:
            continue
        for item in (v if isinstance(v, list) else [v]):
            out.append((f"{k}[]" if isinstance(v, list) else k,
                        "true" if item is True else "false" if item is False else str(item)))
    return out


def hash_candidates(pairs: list[tuple[str, str]], raw_query: str = "") -> set[str]:
    """The strings a client may have hashed for these parameters: unescaped ``k=v&...``
    (Upbit's recipe), Python ``urlencode`` (Bithumb's example), RFC 3986 percent-encoding,
    and the query exactly as sent."""
    out = {"&".join(f"{k}={v}" for k, v in pairs), urlencode(pairs),
           "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in pairs)}
    if raw_query:
        out |= {raw_query, unquote(raw_query)}
    return out


def request_pairs(req: Req) -> list[tuple[str, str]]:
    """The request's parameters: a JSON object body for POST/PUT, else the query string."""
    if req.method in ("POST", "PUT") and req.body.strip():
        try:
            body = json.loads(req.body, parse_float=str, parse_int=str)
        except ValueError:
            raise JwtRefusal("bad_request", "body", "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise JwtRefusal("bad_request", "body", "the request body must be a JSON object")
        return body_pairs(body)
    pairs = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in req.raw_query.split("&") if p]
    return [(unquote_plus(k), unquote_plus(v)) for k, v in pairs]


def params_of(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for k, v in pairs:
        if k.endswith("[]"):
            params.setdefault(k[:-2], []).append(v)
        else:
            params[k] = v
    return params


def verify_jwt_request(core: VenueCore, req: Req, rules: JwtRules = JwtRules()) -> Verified:
    """Verify ``req``'s Bearer token for ``core``'s accounts; the account and parameters,
    or a :class:`JwtRefusal`. Records the nonce as used only once the token verifies."""
    pairs = request_pairs(req)
    header = req.request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise JwtRefusal("bad_key", "no_token", "no Bearer token in the Authorization header")
    token = header[len("Bearer "):].strip()
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise JwtRefusal("bad_signature", "bad_token", "the token is not a JWT") from None
    account = core.by_key.get(str(unverified.get("access_key", "")))
    if account is None:
        raise JwtRefusal("bad_key", "unknown_key", "unknown access key")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short HMAC keys are the venue's choice
            claims = jwt.decode(token, account.secret, algorithms=list(rules.algorithms))
    except jwt.InvalidTokenError:
        raise JwtRefusal("bad_signature", "signature", "the token's signature does not verify") from None
    given = str(claims.get("query_hash", "")).lower()
    if pairs or given:
        alg = str(claims.get("query_hash_alg", "SHA512")).upper()
        if alg not in rules.hash_algs or not any(
                hashlib.new(alg.lower(), c.encode()).hexdigest() == given
                for c in hash_candidates(pairs, "" if req.method in ("POST", "PUT") else req.raw_query)):
            raise JwtRefusal("bad_signature", "query_hash", "query_hash does not match the request's parameters")
    if rules.timestamp_claim:
        ts = claims.get(rules.timestamp_claim)
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise JwtRefusal("bad_signature", "no_timestamp", f"no integer {rules.timestamp_claim} claim")
        try:
            core.within(ts, rules.window_ms)
        except Refusal as r:
            raise JwtRefusal("expired", "expired", r.detail) from None
    nonce = str(claims.get("nonce") or "")
    if not nonce:
        raise JwtRefusal("bad_signature", "bad_token", "the token has no nonce")
    try:
        core.single_use_nonce(account, nonce)
    except Refusal:
        raise JwtRefusal("nonce", "nonce_used", "the nonce was used before") from None
    return Verified(account, claims, params_of(pairs), pairs)


__all__ = ["JwtRefusal", "JwtRules", "Verified", "body_pairs", "hash_candidates", "params_of", "request_pairs",
           "verify_jwt_request"]
