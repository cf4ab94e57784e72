"""Reader for Qt binary resource bundles (`.rcc`, as written by `rcc -binary`).

Layout (all integers big-endian), format versions 1-3:

    header   "qres" u32 version, u32 tree_offset, u32 data_offset, u32 names_offset
             [version >= 3: u32 overall_flags]
    names    per name: u16 length (UTF-16 units), u32 hash, UTF-16BE characters
    tree     one fixed-size node per entry, 14 bytes (v1) or 22 bytes (v2+, adds a u64 mtime):
               u32 name_offset, u16 flags,
               directory (flags & 2): u32 child_count, u32 first_child_index
               file:                  u16 territory, u16 language, u32 data_offset
    data     per file: u32 length, then the bytes; flag 1 = zlib with a u32 big-endian
             uncompressed-size prefix, flag 4 = zstd (not supported here: reported as an error)

Node 0 is the root directory. Children of a directory are stored contiguously.
"""
import struct
import zlib

FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04


class RCCError(Exception):
    """A malformed or unsupported .rcc file (message names the file and the problem)."""


class RCCFile:
    """Reads the file tree of one .rcc bundle; `files` maps '/a/b.png' to a (flags, offset) pair."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.blob = f.read()
        b = self.blob
        if len(b) < 20 or b[:4] != b"qres":
            raise RCCError(f"{path}: not a Qt resource bundle (no 'qres' magic)")
        self.version, self.tree_off, self.data_off, self.names_off = struct.unpack_from(">4I", b, 4)
        if self.version not in (1, 2, 3):
            raise RCCError(f"{path}: unsupported rcc format version {self.version}")
        for name, off in (("tree", self.tree_off), ("data", self.data_off), ("names", self.names_off)):
            if off >= len(b):
                raise RCCError(f"{path}: {name} offset {off} is past the end ({len(b)} bytes)")
        self.node_size = 14 if self.version == 1 else 22
        self.files = {}
        self._walk(0, "", depth=0)

    def _name(self, off):
        p = self.names_off + off
        if p + 6 > len(self.blob):
            raise RCCError(f"{self.path}: name offset {off} out of range")
        (n,) = struct.unpack_from(">H", self.blob, p)
        raw = self.blob[p + 6 : p + 6 + 2 * n]
        if len(raw) != 2 * n:
            raise RCCError(f"{self.path}: name at {off} truncated")
        return raw.decode("utf-16-be")

    def _node(self, index):
        p = self.tree_off + index * self.node_size
        if p + 14 > len(self.blob):
            raise RCCError(f"{self.path}: tree node {index} out of range")
        name_off, flags = struct.unpack_from(">IH", self.blob, p)
        a, b = struct.unpack_from(">II", self.blob, p + 6)
        return name_off, flags, a, b

    def _walk(self, index, prefix, depth):
        if depth > 64:
            raise RCCError(f"{self.path}: directory tree deeper than 64 levels (cycle?)")
        name_off, flags, a, b = self._node(index)
        name = "" if index == 0 else self._name(name_off)
        path = prefix + "/" + name if index else ""
        if flags & FLAG_DIRECTORY:
            count, first = a, b
            for c in range(first, first + count):
                self._walk(c, path, depth + 1)
        else:
            self.files[path] = (flags, b)

    def read(self, path):
        """Returns the (decompressed) bytes of the file at `path` ('/dir/name')."""
        if path not in self.files:
            raise RCCError(f"{self.path}: no entry {path!r}")
        flags, off = self.files[path]
        p = self.data_off + off
        if p + 4 > len(self.blob):
            raise RCCError(f"{self.path}: data for {path!r} out of range")
        (n,) = struct.unpack_from(">I", self.blob, p)
        data = self.blob[p + 4 : p + 4 + n]
        if len(data) != n:
            raise RCCError(f"{self.path}: data for {path!r} truncated")
        if flags & FLAG_COMPRESSED_ZSTD:
            raise RCCError(f"{self.path}: {path!r} is zstd-compressed (unsupported)")
        if flags & FLAG_COMPRESSED:
            try:
                return zlib.decompress(data[4:])
            except zlib.error as e:
                raise RCCError(f"{self.path}: {path!r}: bad zlib data ({e})") from None
        return data
