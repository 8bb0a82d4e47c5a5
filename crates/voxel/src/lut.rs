//! Label names and colours in FreeSurfer's colour lookup table format
//! (`FreeSurferColorLUT.txt`: `id name R G B A` per line, `#` comments).

use crate::error::{Result, VoxelError};
use std::collections::BTreeMap;
use std::path::Path;

/// One label: its name and display colour.
#[derive(Clone, Debug, PartialEq)]
pub struct LutEntry {
    /// Label name, e.g. `"Left-Hippocampus"`.
    pub name: String,
    /// Display colour.
    pub rgb: [u8; 3],
}

/// Label id → name and colour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ColorLut {
    entries: BTreeMap<i32, LutEntry>,
}

/// The subcortical labels of FreeSurfer's `aseg` with their standard colours: used when the user
/// gives no table, so `measure` prints names for FreeSurfer outputs out of the box.
const ASEG: &str = "
0 Unknown 0 0 0 0
2 Left-Cerebral-White-Matter 245 245 245 0
3 Left-Cerebral-Cortex 205 62 78 0
4 Left-Lateral-Ventricle 120 18 134 0
5 Left-Inf-Lat-Vent 196 58 250 0
7 Left-Cerebellum-White-Matter 220 248 164 0
8 Left-Cerebellum-Cortex 230 148 34 0
10 Left-Thalamus 0 118 14 0
11 Left-Caudate 122 186 220 0
12 Left-Putamen 236 13 176 0
13 Left-Pallidum 12 48 255 0
14 3rd-Ventricle 204 182 142 0
15 4th-Ventricle 42 204 164 0
16 Brain-Stem 119 159 176 0
17 Left-Hippocampus 220 216 20 0
18 Left-Amygdala 103 255 255 0
24 CSF 60 60 60 0
26 Left-Accumbens-area 255 165 0 0
28 Left-VentralDC 165 42 42 0
30 Left-vessel 160 32 240 0
31 Left-choroid-plexus 0 200 200 0
41 Right-Cerebral-White-Matter 245 245 245 0
42 Right-Cerebral-Cortex 205 62 78 0
43 Right-Lateral-Ventricle 120 18 134 0
44 Right-Inf-Lat-Vent 196 58 250 0
46 Right-Cerebellum-White-Matter 220 248 164 0
47 Right-Cerebellum-Cortex 230 148 34 0
49 Right-Thalamus 0 118 14 0
50 Right-Caudate 122 186 220 0
51 Right-Putamen 236 13 176 0
52 Right-Pallidum 13 48 255 0
53 Right-Hippocampus 220 216 20 0
54 Right-Amygdala 103 255 255 0
58 Right-Accumbens-area 255 165 0 0
60 Right-VentralDC 165 42 42 0
62 Right-vessel 160 32 240 0
63 Right-choroid-plexus 0 200 221 0
72 5th-Ventricle 120 190 150 0
77 WM-hypointensities 200 70 255 0
85 Optic-Chiasm 234 169 30 0
251 CC_Posterior 0 0 64 0
252 CC_Mid_Posterior 0 0 112 0
253 CC_Central 0 0 160 0
254 CC_Mid_Anterior 0 0 208 0
255 CC_Anterior 0 0 255 0
";

impl ColorLut {
    /// Parses LUT text; `source` names the file in errors.
    pub fn parse(text: &str, source: &Path) -> Result<ColorLut> {
        let mut entries = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let bad = |what: &str| {
                VoxelError::format(source, format!("line {}: {what}: {line:?}", n + 1))
            };
            if f.len() < 2 {
                return Err(bad("expected `id name R G B A`"));
            }
            let id: i32 = f[0]
                .parse()
                .map_err(|_| bad("label id is not an integer"))?;
            let mut rgb = [0u8; 3];
            if f.len() >= 5 {
                for (c, v) in rgb.iter_mut().enumerate() {
                    *v = f[2 + c]
                        .parse()
                        .map_err(|_| bad("colour component is not 0-255"))?;
                }
            } else {
                rgb = fallback_color(id);
            }
            entries.insert(
                id,
                LutEntry {
                    name: f[1].to_string(),
                    rgb,
                },
            );
        }
        Ok(ColorLut { entries })
    }

    /// Reads a LUT file.
    pub fn read(path: &Path) -> Result<ColorLut> {
        let text = std::fs::read_to_string(path).map_err(|e| VoxelError::io(path, e))?;
        ColorLut::parse(&text, path)
    }

    /// FreeSurfer's `aseg` labels (subcortical structures, ventricles, white matter, cortex).
    pub fn freesurfer_aseg() -> ColorLut {
        // The embedded table is checked by a unit test, so this cannot fail in practice.
        ColorLut::parse(ASEG, Path::new("<built-in aseg table>")).unwrap_or_default()
    }

    /// Name of a label, if the table has it.
    pub fn name(&self, id: i32) -> Option<&str> {
        self.entries.get(&id).map(|e| e.name.as_str())
    }

    /// Colour of a label: the table's, or a fixed colour derived from the id.
    pub fn color(&self, id: i32) -> [u8; 3] {
        self.entries
            .get(&id)
            .map(|e| e.rgb)
            .unwrap_or_else(|| fallback_color(id))
    }

    /// Id of a label name (case-insensitive).
    pub fn id_of(&self, name: &str) -> Option<i32> {
        self.entries
            .iter()
            .find(|(_, e)| e.name.eq_ignore_ascii_case(name))
            .map(|(&id, _)| id)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A bright colour that depends only on the id, for labels missing from a table.
pub fn fallback_color(id: i32) -> [u8; 3] {
    let mut h = (id as u32).wrapping_mul(2654435761);
    h ^= h >> 15;
    let c = |s: u32| 64 + ((h >> s) & 0xff) as u8 % 192;
    [c(0), c(8), c(16)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_aseg_parses() {
        let lut = ColorLut::freesurfer_aseg();
        assert!(lut.len() > 40);
        assert_eq!(lut.name(17), Some("Left-Hippocampus"));
        assert_eq!(lut.color(17), [220, 216, 20]);
        assert_eq!(lut.id_of("right-hippocampus"), Some(53));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let e = ColorLut::parse(
            "# c\n17 Left-Hippocampus 220 216 20 0\nx y\n",
            Path::new("lut.txt"),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("lut.txt") && msg.contains("line 3"), "{msg}");
    }
}
