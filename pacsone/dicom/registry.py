"""The remote AE registry as the DICOM services see it (who may call us: policy.py)."""

from ..models import RemoteAE


def move_destination(ae_title: str | None) -> RemoteAE | None:
    """The registered AE a C-MOVE may send to, or None (unknown, or not a move destination)."""
    if not ae_title:
        return None
    return RemoteAE.objects.filter(ae_title=ae_title.strip(), is_move_destination=True).first()
