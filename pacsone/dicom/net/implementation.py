"""Who we are on the wire and in the files we write (PS3.7 D.3.3.2, PS3.10 7.1): our own
Implementation Class UID and Implementation Version Name, announced in every association we
accept or request and written into the File Meta Information of every instance we receive.

The UID was generated once with `pydicom.uid.generate_uid(prefix=None)`: a UUID-derived UID
under 2.25 (ISO/IEC 9834-8), which needs no registered root and is ours alone. It must never
change: peers and files identify this software by it. The version name changes with VERSION.
"""

VERSION = "1.0"
IMPLEMENTATION_CLASS_UID = "2.25.168287437614702755587343692853864701122"
IMPLEMENTATION_VERSION_NAME = f"PACSONE_{VERSION}"  # SH: at most 16 characters (tested)
