"""Who may do what over DICOM (README "DICOM access").

- Associations and C-STORE (`PACS_ACCEPT_CALLING_AE`): from `any` AE (default), or only from
  `registered` AEs calling from their registered address; then C-STORE also needs the AE's
  store permission.
- C-FIND, C-MOVE, C-GET (`PACS_DICOM_QUERY_POLICY`): under `registered` (default) only from a
  registered AE with the query permission, calling from its registered address. Anyone else's
  request is refused with 0x0124 (Refused: Not Authorized) and an Error Comment, and journaled;
  the association itself stays (C-ECHO and C-STORE go on working). Under `open` any AE may.
- A registered AE linked to a user or a group sees only what they may see, through the one
  visibility rule (pacsone/visibility.py), under either policy; an unlinked one sees the whole
  archive.

An AE's address matches when the caller's IP is one of its `networks` (IPs, host names or CIDR
networks), or, when that is blank, its host. Host names are resolved once per association, each
within PACS_DICOM_RESOLVE_SECONDS; a name that does not resolve in time matches nothing.
"""

import concurrent.futures
import ipaddress
import logging
import socket
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from ..models import RemoteAE, Scope, Study
from ..visibility import group_visible_studies, live_studies, visible_studies

log = logging.getLogger(__name__)

RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


@dataclass
class Caller:
    """The calling AE of one association, as the registry knows it."""

    ae_title: str
    address: str
    remote: RemoteAE | None  # registered under this AE title
    from_registered_address: bool

    @property
    def recognized(self) -> bool:
        return self.remote is not None and self.from_registered_address


@dataclass
class Decision:
    allowed: bool
    reason: str = ""
    studies: QuerySet | None = None  # what queries and retrieves may reach; None: the whole archive


def caller_of(assoc) -> Caller:
    """The association's caller, identified once (one registry read, one name resolution)."""
    caller = assoc.extra.get("caller")
    if caller is None:
        caller = assoc.extra["caller"] = identify(assoc.requestor.ae_title, assoc.requestor.address)
    return caller


def identify(ae_title: str, address: str) -> Caller:
    title = (ae_title or "").strip()
    remote = RemoteAE.objects.select_related("user", "group").filter(ae_title=title).first() if title else None
    return Caller(title, address, remote, remote is not None and address_matches(remote, address))


# --- Addresses --------------------------------------------------------------------------------------


def _ip(address: str):
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped else ip


def allowed_sources(remote: RemoteAE) -> list[str]:
    return [item.strip() for item in (remote.networks or remote.host).split(",") if item.strip()]


def address_matches(remote: RemoteAE, address: str) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    for source in allowed_sources(remote):
        network = parse_network(source)
        if network is not None:
            if ip.version == network.version and ip in network:
                return True
        elif ip in resolve(source):
            return True
    return False


def parse_network(text: str):
    """An IP address or CIDR network, or None for a host name."""
    try:
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        return None


def resolve(host: str) -> set:
    """The addresses of a host name, or none if it does not resolve within the time allowed."""
    future = RESOLVER.submit(socket.getaddrinfo, host, None, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=settings.PACS_DICOM_RESOLVE_SECONDS)
    except concurrent.futures.TimeoutError:
        log.warning("resolve timed out host=%s seconds=%s", host, settings.PACS_DICOM_RESOLVE_SECONDS)
        return set()
    except OSError as error:
        log.warning("resolve failed host=%s error=%s", host, error)
        return set()
    return {ip for ip in (_ip(info[4][0]) for info in infos) if ip is not None}


# --- Decisions --------------------------------------------------------------------------------------


def _not_recognized(caller: Caller) -> str:
    if caller.remote is None:
        return f"calling AE title {caller.ae_title or '(empty)'} not recognized"
    return f"{caller.ae_title} is not registered for address {caller.address}"


def may_associate(caller: Caller) -> Decision:
    if settings.PACS_ACCEPT_CALLING_AE != "registered" or caller.recognized:
        return Decision(True)
    return Decision(False, _not_recognized(caller))


def may_store(caller: Caller) -> Decision:
    if settings.PACS_ACCEPT_CALLING_AE != "registered":
        return Decision(True)
    if not caller.recognized:
        return Decision(False, _not_recognized(caller))
    if not caller.remote.may_store:
        return Decision(False, f"{caller.ae_title} may not store here")
    return Decision(True)


def may_query(caller: Caller) -> Decision:
    """Whether the caller may C-FIND/C-MOVE/C-GET, and what those may reach."""
    if settings.PACS_DICOM_QUERY_POLICY == "open":
        # Anyone may; an AE registered under this title still sees only its user's or group's studies.
        return Decision(True, studies=scope_studies(caller.remote) if caller.remote else live_studies())
    if not caller.recognized:
        return Decision(False, _not_recognized(caller))
    if not caller.remote.may_query:
        return Decision(False, f"{caller.ae_title} may not query or retrieve")
    return Decision(True, studies=scope_studies(caller.remote))


def scope_studies(remote: RemoteAE) -> QuerySet:
    """The studies a registered AE's queries and retrieves reach (never those in the trash)."""
    if remote.scope == Scope.USER:
        return visible_studies(remote.user) if remote.user else Study.objects.none()
    if remote.scope == Scope.GROUP:
        return group_visible_studies(remote.group)
    return live_studies()
