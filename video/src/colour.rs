//! Decoded pictures (Y′CbCr planes, chroma subsampled) turned into RGBA for a texture.

/// A decoded picture's planes, as a decoder gives them.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    /// Luma, `width × height` samples.
    pub y: &'a [u8],
    /// Blue difference, `chroma_width × chroma_height` samples.
    pub u: &'a [u8],
    /// Red difference, as `u`.
    pub v: &'a [u8],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Chroma samples a row.
    pub chroma_width: u32,
    /// Chroma rows.
    pub chroma_height: u32,
    /// Bits a sample: 8 (a byte each) or more (two bytes each, little-endian).
    pub bit_depth: u8,
}

/// The fixed-point Y′CbCr to RGB matrix (scaled by 256) a film's pictures use: BT.709 for high
/// definition, BT.601 below it (what players assume when a file says nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Matrix {
    red_from_v: i32,
    green_from_u: i32,
    green_from_v: i32,
    blue_from_u: i32,
}

impl Matrix {
    fn for_height(height: u32) -> Self {
        if height >= 720 {
            Self { red_from_v: 459, green_from_u: -55, green_from_v: -136, blue_from_u: 541 }
        } else {
            Self { red_from_v: 409, green_from_u: -100, green_from_v: -208, blue_from_u: 516 }
        }
    }
}

/// `planes` (limited range) written as RGBA into `rgba`, which holds `width * height * 4` bytes.
/// Planes shorter than their sizes say are read as black and grey where they end, never past it,
/// and nothing is written past `rgba`.
pub fn yuv_to_rgba(planes: &Planes<'_>, rgba: &mut [u8]) {
    if !whole_8_bit_420(planes, rgba) {
        any_planes(planes, rgba);
    }
}

/// The common case, fast: 8-bit samples, chroma halved both ways (4:2:0), every plane and the
/// output as long as the sizes say. Each chroma sample's share of the matrix is worked out once
/// for the four pixels it colours, and no sample is looked up through a bounds check. `false`
/// (nothing written) when `planes` is not that case.
fn whole_8_bit_420(planes: &Planes<'_>, rgba: &mut [u8]) -> bool {
    let (width, height) = (planes.width as usize, planes.height as usize);
    let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
    let fits = planes.bit_depth == 8
        && planes.chroma_width as usize == chroma_width
        && planes.chroma_height as usize == chroma_height
        && width.checked_mul(height).is_some_and(|pixels| {
            planes.y.len() >= pixels && pixels.checked_mul(4).is_some_and(|bytes| rgba.len() >= bytes)
        })
        && planes.u.len() >= chroma_width * chroma_height
        && planes.v.len() >= chroma_width * chroma_height;
    if !fits || width == 0 {
        return fits;
    }
    let matrix = Matrix::for_height(planes.height);
    // Each row's chroma, its share of red, green and blue worked out once a sample and spread
    // over the two pixels it colours, so that the loop over pixels reads every input in step
    // (which the compiler turns into vector instructions).
    let (mut reds, mut greens, mut blues) =
        (vec![0i32; chroma_width * 2], vec![0i32; chroma_width * 2], vec![0i32; chroma_width * 2]);
    let rows = planes.y.chunks_exact(width).zip(rgba.chunks_exact_mut(width * 4)).take(height);
    for (row, (luma, line)) in rows.enumerate() {
        if row % 2 == 0 {
            let chroma = (row / 2) * chroma_width;
            let blue_differences = &planes.u[chroma..chroma + chroma_width];
            let red_differences = &planes.v[chroma..chroma + chroma_width];
            let shares = reds.chunks_exact_mut(2).zip(greens.chunks_exact_mut(2)).zip(blues.chunks_exact_mut(2));
            for (((red, green), blue), (&u, &v)) in shares.zip(blue_differences.iter().zip(red_differences)) {
                let (u, v) = (i32::from(u) - 128, i32::from(v) - 128);
                red.fill(matrix.red_from_v * v);
                green.fill(matrix.green_from_u * u + matrix.green_from_v * v);
                blue.fill(matrix.blue_from_u * u);
            }
        }
        let mut packed = [[0u8; 4]; BLOCK];
        let blocks = luma.chunks(BLOCK).zip(reds.chunks(BLOCK)).zip(greens.chunks(BLOCK)).zip(blues.chunks(BLOCK));
        for ((((luma, red), green), blue), line) in blocks.zip(line.chunks_mut(BLOCK * 4)) {
            let pixels = luma.iter().zip(red).zip(green).zip(blue);
            for ((((&y, &red), &green), &blue), out) in pixels.zip(&mut packed) {
                // Wrapping, as it cannot overflow (every term is under 2^18 in size) and an
                // overflow check in this loop would keep it from being vectorised.
                let luma = (298 * (i32::from(y) - 16)).wrapping_add(128);
                let value = to_byte32(luma.wrapping_add(red))
                    | to_byte32(luma.wrapping_add(green)) << 8
                    | to_byte32(luma.wrapping_add(blue)) << 16;
                *out = (value | 0xff00_0000).to_le_bytes();
            }
            line.copy_from_slice(&packed.as_flattened()[..line.len()]);
        }
    }
    true
}

/// Any planes: chroma of any subsampling, samples of any depth, planes shorter than they should be.
fn any_planes(planes: &Planes<'_>, rgba: &mut [u8]) {
    let (width, height) = (planes.width as usize, planes.height as usize);
    let chroma_width = (planes.chroma_width as usize).max(1);
    let chroma_height = (planes.chroma_height as usize).max(1);
    let matrix = Matrix::for_height(planes.height);
    let wide = planes.bit_depth > 8;
    let shift = u32::from(planes.bit_depth.saturating_sub(8));
    let sample = |plane: &[u8], at: usize, missing: i32| -> i32 {
        if wide {
            match plane.get(at * 2..at * 2 + 2) {
                Some(pair) => i32::from(u16::from_le_bytes([pair[0], pair[1]]) >> shift),
                None => missing,
            }
        } else {
            plane.get(at).map_or(missing, |value| i32::from(*value))
        }
    };
    for row in 0..height {
        let chroma_row = (row * chroma_height / height).min(chroma_height - 1);
        let Some(line) = rgba.get_mut(row * width * 4..(row + 1) * width * 4) else { return };
        for (column, pixel) in line.chunks_exact_mut(4).enumerate() {
            let chroma_column = (column * chroma_width / width).min(chroma_width - 1);
            let at = chroma_row * chroma_width + chroma_column;
            let luma = 298 * (sample(planes.y, row * width + column, 16) - 16) + 128;
            let blue_difference = sample(planes.u, at, 128) - 128;
            let red_difference = sample(planes.v, at, 128) - 128;
            let red = luma + matrix.red_from_v * red_difference;
            let green = luma + matrix.green_from_u * blue_difference + matrix.green_from_v * red_difference;
            let blue = luma + matrix.blue_from_u * blue_difference;
            pixel.copy_from_slice(&[to_byte(red), to_byte(green), to_byte(blue), 255]);
        }
    }
}

/// Pixels converted at a time.
const BLOCK: usize = 32;

/// [`to_byte`], widened.
fn to_byte32(scaled: i32) -> u32 {
    (scaled >> 8).clamp(0, 255) as u32
}

fn to_byte(scaled: i32) -> u8 {
    (scaled >> 8).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_pixel(y: u8, u: u8, v: u8) -> [u8; 4] {
        let mut rgba = [0u8; 4];
        let planes =
            Planes { y: &[y], u: &[u], v: &[v], width: 1, height: 1, chroma_width: 1, chroma_height: 1, bit_depth: 8 };
        yuv_to_rgba(&planes, &mut rgba);
        rgba
    }

    #[test]
    fn black_white_and_the_primaries_come_out_as_they_went_in() {
        // Limited-range BT.601 values of black, white, red, green and blue.
        let cases: [([u8; 3], [u8; 3]); 5] = [
            ([16, 128, 128], [0, 0, 0]),
            ([235, 128, 128], [255, 255, 255]),
            ([81, 90, 240], [255, 0, 0]),
            ([145, 54, 34], [0, 255, 0]),
            ([41, 240, 110], [0, 0, 255]),
        ];
        for ([y, u, v], expected) in cases {
            let rgba = one_pixel(y, u, v);
            for (channel, (got, want)) in rgba.iter().zip(expected).enumerate() {
                assert!(got.abs_diff(want) <= 3, "{y},{u},{v} channel {channel}: {got} for {want}");
            }
            assert_eq!(rgba[3], 255);
        }
    }

    proptest::proptest! {
        /// The fast way through the common case gives exactly what the general one does, for
        /// any size (odd ones included) and any samples.
        #[test]
        fn the_fast_way_gives_what_the_general_way_gives(
            width in 1usize..70,
            height in 1usize..12,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
            let mut state = seed | 1;
            let mut samples = |count: usize| -> Vec<u8> {
                (0..count)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect()
            };
            let (y, u, v) = (samples(width * height), samples(chroma_width * chroma_height), samples(chroma_width * chroma_height));
            let planes = Planes {
                y: &y,
                u: &u,
                v: &v,
                width: width as u32,
                height: height as u32,
                chroma_width: chroma_width as u32,
                chroma_height: chroma_height as u32,
                bit_depth: 8,
            };
            let (mut fast, mut general) = (vec![0u8; width * height * 4], vec![0u8; width * height * 4]);
            proptest::prop_assert!(whole_8_bit_420(&planes, &mut fast));
            any_planes(&planes, &mut general);
            proptest::prop_assert_eq!(fast, general);
        }
    }

    #[test]
    fn a_short_plane_or_output_takes_the_general_way() {
        let planes = Planes {
            y: &[16; 4],
            u: &[128],
            v: &[],
            width: 2,
            height: 2,
            chroma_width: 1,
            chroma_height: 1,
            bit_depth: 8,
        };
        assert!(!whole_8_bit_420(&planes, &mut [0; 16]), "the red-difference plane is empty");
        let planes = Planes { v: &[128], ..planes };
        assert!(!whole_8_bit_420(&planes, &mut [0; 15]), "the output is a byte short");
        assert!(whole_8_bit_420(&planes, &mut [0; 16]));
    }

    #[test]
    fn ten_bit_samples_are_read_as_their_top_eight_bits() {
        let white = 940u16.to_le_bytes();
        let grey = 512u16.to_le_bytes();
        let planes = Planes {
            y: &white,
            u: &grey,
            v: &grey,
            width: 1,
            height: 1,
            chroma_width: 1,
            chroma_height: 1,
            bit_depth: 10,
        };
        let mut rgba = [0u8; 4];
        yuv_to_rgba(&planes, &mut rgba);
        assert_eq!(rgba, [255, 255, 255, 255]);
    }

    #[test]
    fn short_planes_read_as_black_and_nothing_is_written_past_the_picture() {
        let planes =
            Planes { y: &[235], u: &[], v: &[], width: 2, height: 2, chroma_width: 1, chroma_height: 1, bit_depth: 8 };
        let mut rgba = vec![7u8; 2 * 2 * 4];
        yuv_to_rgba(&planes, &mut rgba);
        assert_eq!(&rgba[..4], &[255, 255, 255, 255], "the one luma sample there is");
        assert_eq!(&rgba[4..8], &[0, 0, 0, 255], "missing luma is black");
        let mut short = vec![9u8; 6];
        yuv_to_rgba(&planes, &mut short);
        assert_eq!(&short[..], &[9; 6], "a row that does not fit is not written at all");
    }
}
