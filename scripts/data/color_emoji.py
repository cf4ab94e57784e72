"""Reader for colour-bitmap emoji fonts (OpenType CBLC/CBDT, e.g. NotoColorEmoji.ttf).

Extracts the embedded PNG of every glyph and maps Unicode code-point sequences to glyphs
through the `cmap` table (formats 4 and 12) and the GSUB ligature lookups (type 4, also
behind type-7 extension lookups), which is how emoji fonts encode ZWJ sequences, flags and
keycaps. Only the tables needed for that are parsed; everything else is ignored.

    font = ColorEmojiFont("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
    gid = font.glyph_for_sequence([0x1F600])          # None when the font lacks it
    png_bytes = font.png(gid)                         # None when the glyph has no bitmap
"""
import struct


class FontError(Exception):
    """A malformed or unsupported font file (message names the file and the table)."""


class ColorEmojiFont:
    """Parsed cmap, GSUB ligatures and CBLC/CBDT bitmap locations of one font file."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.b = f.read()
        if len(self.b) < 12:
            raise FontError(f"{path}: too short for an OpenType font")
        (version, num_tables) = struct.unpack_from(">IH", self.b, 0)
        if version not in (0x00010000, 0x74727565):
            raise FontError(f"{path}: not a TrueType/OpenType font (sfnt version {version:#x})")
        self.tables = {}
        for i in range(num_tables):
            tag, _, off, length = struct.unpack_from(">4sIII", self.b, 12 + 16 * i)
            if off + length > len(self.b):
                raise FontError(f"{path}: table {tag!r} extends past the end of the file")
            self.tables[tag.decode("latin-1")] = (off, length)
        for needed in ("cmap", "CBLC", "CBDT"):
            if needed not in self.tables:
                raise FontError(f"{path}: no {needed} table (not a CBDT colour-bitmap font)")
        self.cmap = self._read_cmap()
        self.ligatures = self._read_gsub_ligatures() if "GSUB" in self.tables else []
        self.locations = self._read_cblc()

    # ---- helpers
    def _u16(self, p):
        return struct.unpack_from(">H", self.b, p)[0]

    def _u32(self, p):
        return struct.unpack_from(">I", self.b, p)[0]

    # ---- cmap
    def _read_cmap(self):
        base, _ = self.tables["cmap"]
        n = self._u16(base + 2)
        subtables = {}
        for i in range(n):
            pid, eid, off = struct.unpack_from(">HHI", self.b, base + 4 + 8 * i)
            subtables[(pid, eid)] = base + off
        for key in ((3, 10), (0, 6), (0, 4), (3, 1), (0, 3)):
            if key in subtables:
                p = subtables[key]
                fmt = self._u16(p)
                if fmt == 12:
                    return self._cmap12(p)
                if fmt == 4:
                    return self._cmap4(p)
        raise FontError(f"{self.path}: cmap has no Unicode subtable of format 4 or 12")

    def _cmap12(self, p):
        n_groups = self._u32(p + 12)
        out = {}
        for i in range(n_groups):
            start, end, gid = struct.unpack_from(">III", self.b, p + 16 + 12 * i)
            for c in range(start, end + 1):
                out[c] = gid + (c - start)
        return out

    def _cmap4(self, p):
        seg2 = self._u16(p + 6)
        ends = p + 14
        starts = ends + seg2 + 2
        deltas = starts + seg2
        ranges = deltas + seg2
        out = {}
        for s in range(seg2 // 2):
            end = self._u16(ends + 2 * s)
            start = self._u16(starts + 2 * s)
            delta = self._u16(deltas + 2 * s)
            ro_pos = ranges + 2 * s
            ro = self._u16(ro_pos)
            for c in range(start, end + 1):
                if c == 0xFFFF:
                    continue
                if ro == 0:
                    g = (c + delta) & 0xFFFF
                else:
                    g = self._u16(ro_pos + ro + 2 * (c - start))
                    if g:
                        g = (g + delta) & 0xFFFF
                if g:
                    out[c] = g
        return out

    # ---- GSUB ligatures
    def _coverage(self, p):
        fmt = self._u16(p)
        if fmt == 1:
            n = self._u16(p + 2)
            return [self._u16(p + 4 + 2 * i) for i in range(n)]
        if fmt == 2:
            n = self._u16(p + 2)
            glyphs = []
            for i in range(n):
                start, end, _ = struct.unpack_from(">HHH", self.b, p + 4 + 6 * i)
                glyphs.extend(range(start, end + 1))
            return glyphs
        raise FontError(f"{self.path}: GSUB coverage format {fmt} unknown")

    def _read_gsub_ligatures(self):
        """One dict per type-4 lookup, in lookup order: first glyph -> [(components, ligature)]."""
        base, _ = self.tables["GSUB"]
        lookup_list = base + self._u16(base + 8)
        lookups = []
        for i in range(self._u16(lookup_list)):
            lk = lookup_list + self._u16(lookup_list + 2 + 2 * i)
            ltype, _, nsub = struct.unpack_from(">HHH", self.b, lk)
            table = {}
            for s in range(nsub):
                st = lk + self._u16(lk + 6 + 2 * s)
                t = ltype
                if t == 7:  # extension: the real subtable is further on
                    t = self._u16(st + 2)
                    st = st + self._u32(st + 4)
                if t != 4:
                    continue
                if self._u16(st) != 1:
                    raise FontError(f"{self.path}: GSUB ligature subtable format {self._u16(st)} unknown")
                cov = self._coverage(st + self._u16(st + 2))
                nsets = self._u16(st + 4)
                for k in range(min(nsets, len(cov))):
                    ls = st + self._u16(st + 6 + 2 * k)
                    for j in range(self._u16(ls)):
                        lg = ls + self._u16(ls + 2 + 2 * j)
                        lig_glyph, ncomp = struct.unpack_from(">HH", self.b, lg)
                        comps = tuple(self._u16(lg + 4 + 2 * c) for c in range(ncomp - 1))
                        table.setdefault(cov[k], []).append((comps, lig_glyph))
            if table:
                for v in table.values():  # longest match first
                    v.sort(key=lambda e: -len(e[0]))
                lookups.append(table)
        return lookups

    def _shape(self, glyphs):
        for table in self.ligatures:
            out, i = [], 0
            while i < len(glyphs):
                for comps, lig in table.get(glyphs[i], ()):
                    n = len(comps)
                    if tuple(glyphs[i + 1 : i + 1 + n]) == comps:
                        out.append(lig)
                        i += 1 + n
                        break
                else:
                    out.append(glyphs[i])
                    i += 1
            glyphs = out
        return glyphs

    def glyph_for_sequence(self, codepoints):
        """Glyph id that renders `codepoints` as one emoji, or None when the font has none.

        Tries the sequence as given and with U+FE0F (emoji presentation selector) removed,
        since fonts differ in whether their ligatures include it."""
        variants = [list(codepoints)]
        stripped = [c for c in codepoints if c != 0xFE0F]
        if stripped != variants[0]:
            variants.append(stripped)
        for seq in variants:
            if not seq or any(c not in self.cmap for c in seq):
                continue
            shaped = self._shape([self.cmap[c] for c in seq])
            if len(shaped) == 1 and shaped[0] in self.locations:
                return shaped[0]
        return None

    # ---- CBLC / CBDT
    def _read_cblc(self):
        """glyph id -> (offset in file, length) of its CBDT record, largest strike only."""
        cblc, _ = self.tables["CBLC"]
        cbdt, cbdt_len = self.tables["CBDT"]
        num_sizes = self._u32(cblc + 4)
        if num_sizes == 0:
            raise FontError(f"{self.path}: CBLC has no strikes")
        best = None
        for s in range(num_sizes):
            rec = cblc + 8 + 48 * s
            ppem = self.b[rec + 45]
            if best is None or ppem > best[1]:
                best = (rec, ppem)
        rec = best[0]
        array_off, _, n_sub = struct.unpack_from(">III", self.b, rec)
        array = cblc + array_off
        loc = {}
        for i in range(n_sub):
            first, last, add = struct.unpack_from(">HHI", self.b, array + 8 * i)
            sub = array + add
            index_fmt, image_fmt, data_off = struct.unpack_from(">HHI", self.b, sub)
            if image_fmt not in (17, 18, 19):
                raise FontError(f"{self.path}: CBDT image format {image_fmt} is not PNG (17/18/19)")
            entries = []  # (glyph, start, end) relative to data_off
            if index_fmt == 1:
                offs = struct.unpack_from(f">{last - first + 2}I", self.b, sub + 8)
                entries = [(first + k, offs[k], offs[k + 1]) for k in range(last - first + 1)]
            elif index_fmt == 3:
                offs = struct.unpack_from(f">{last - first + 2}H", self.b, sub + 8)
                entries = [(first + k, offs[k], offs[k + 1]) for k in range(last - first + 1)]
            elif index_fmt == 2:
                size = self._u32(sub + 8)
                entries = [(first + k, k * size, (k + 1) * size) for k in range(last - first + 1)]
            elif index_fmt == 4:
                n = self._u32(sub + 8)
                pairs = [struct.unpack_from(">HH", self.b, sub + 12 + 4 * k) for k in range(n + 1)]
                entries = [(pairs[k][0], pairs[k][1], pairs[k + 1][1]) for k in range(n)]
            elif index_fmt == 5:
                size = self._u32(sub + 8)
                n = self._u32(sub + 20)
                gids = struct.unpack_from(f">{n}H", self.b, sub + 24)
                entries = [(g, k * size, (k + 1) * size) for k, g in enumerate(gids)]
            else:
                raise FontError(f"{self.path}: CBLC index subtable format {index_fmt} unknown")
            for g, a, e in entries:
                if e > a:
                    start = cbdt + data_off + a
                    if start + (e - a) > cbdt + cbdt_len:
                        raise FontError(f"{self.path}: CBDT record of glyph {g} past the table end")
                    loc[g] = (start, e - a, image_fmt)
        return loc

    def png(self, gid):
        """The PNG bytes embedded for glyph `gid`, or None when it has no bitmap."""
        if gid not in self.locations:
            return None
        start, length, fmt = self.locations[gid]
        header = {17: 5, 18: 8, 19: 0}[fmt]
        n = self._u32(start + header)
        data = self.b[start + header + 4 : start + header + 4 + n]
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            raise FontError(f"{self.path}: glyph {gid} bitmap is not a PNG")
        return data
