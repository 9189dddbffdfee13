"""HL7 destinations: add, change, remove; each a configuration change journaled with it.
The page, the API and `manage.py hl7dest` call these."""

from django.db import transaction

from audit.journal import Action, record

from .models import Destination

EVENTS = tuple(Destination.Event.values)


class DestinationError(ValueError):
    """A destination that cannot be saved as given (the message says why)."""


def parse_events(events) -> str:
    """`received,read` (or a list) -> the stored form; DestinationError for an unknown event."""
    items = events.split(",") if isinstance(events, str) else list(events)
    chosen = [item.strip().lower() for item in items if item and item.strip()]
    unknown = [item for item in chosen if item not in EVENTS]
    if unknown:
        raise DestinationError(f"unknown event{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: choose from {', '.join(EVENTS)}")
    if not chosen:
        raise DestinationError(f"choose at least one event: {', '.join(EVENTS)}")
    return ",".join(event for event in EVENTS if event in chosen)


def _checked(name: str, host: str, port) -> tuple[str, str, int]:
    name, host = (name or "").strip(), (host or "").strip()
    if not name or len(name) > 64:
        raise DestinationError("a destination needs a name of at most 64 characters")
    if not host or len(host) > 255 or any(c.isspace() for c in host):
        raise DestinationError("a destination needs a host name or address")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise DestinationError(f"the port must be a number, not {port!r}") from None
    if not 1 <= port <= 65535:
        raise DestinationError("the port must be between 1 and 65535")
    return name, host, port


def _who(acting_user, request, username: str) -> dict:
    return {"user": acting_user, "request": request, "username": username}


def do_add_destination(name: str, host: str, port, events="received", *, acting_user=None, request=None,
                       username: str = "", **options) -> Destination:
    name, host, port = _checked(name, host, port)
    stored_events = parse_events(events)
    if Destination.objects.filter(name=name).exists():
        raise DestinationError(f"a destination named {name} exists already")
    with transaction.atomic():
        destination = Destination.objects.create(name=name, host=host, port=port, events=stored_events, **options)
        record(Action.CONFIGURATION, target=f"HL7 destination {name}"[:255],
               detail=f"added {host}:{port} events={stored_events}", **_who(acting_user, request, username))
    return destination


def do_change_destination(destination: Destination, *, acting_user=None, request=None, username: str = "",
                          **values) -> Destination:
    name, host, port = _checked(values.get("name", destination.name), values.get("host", destination.host),
                                values.get("port", destination.port))
    if Destination.objects.filter(name=name).exclude(pk=destination.pk).exists():
        raise DestinationError(f"a destination named {name} exists already")
    events = parse_events(values.get("events", destination.events))
    with transaction.atomic():
        destination.name, destination.host, destination.port, destination.events = name, host, port, events
        for field in ("receiving_application", "receiving_facility", "enabled"):
            if field in values:
                setattr(destination, field, values[field])
        destination.save()
        record(Action.CONFIGURATION, target=f"HL7 destination {name}"[:255],
               detail=f"changed: {host}:{port} events={events} enabled={destination.enabled}",
               **_who(acting_user, request, username))
    return destination


def do_remove_destination(destination: Destination, *, acting_user=None, request=None, username: str = "") -> None:
    with transaction.atomic():
        name = destination.name
        destination.delete()
        record(Action.CONFIGURATION, target=f"HL7 destination {name}"[:255], detail="removed",
               **_who(acting_user, request, username))
