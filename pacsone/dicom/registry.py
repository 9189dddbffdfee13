"""The remote AE registry as the DICOM services see it."""

from ..models import RemoteAE


def registered_ae_titles() -> list[str]:
    return list(RemoteAE.objects.values_list("ae_title", flat=True))


def may_store(ae_title: str) -> bool:
    return RemoteAE.objects.filter(ae_title=ae_title, may_store=True).exists()


def may_query(ae_title: str) -> bool:
    return RemoteAE.objects.filter(ae_title=ae_title, may_query=True).exists()


def move_destination(ae_title: str | None) -> RemoteAE | None:
    """The registered AE a C-MOVE may send to, or None (unknown, or not a move destination)."""
    if not ae_title:
        return None
    return RemoteAE.objects.filter(ae_title=ae_title.strip(), is_move_destination=True).first()
