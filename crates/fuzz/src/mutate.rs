//! A small deterministic mutator for the stable smoke runs: bit flips,
//! byte changes, insertions, deletions, repeats and splices of tokens that
//! matter to the parsers. It is not coverage guided (cargo-fuzz is, for
//! long runs); it makes CI exercise the targets on malformed variants of
//! real inputs, reproducibly.

/// xorshift64*: reproducible, dependency-free randomness for mutation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n).unwrap_or(u64::MAX)).unwrap_or(0)
    }
}

/// Tokens spliced into inputs: separators, numbers at the edges of ranges,
/// path tricks and format markers.
const TOKENS: &[&[u8]] = &[
    b"-",
    b",",
    b".",
    b"/",
    b"..",
    b"../",
    b"\\",
    b"\0",
    b"\n",
    b"\r\n",
    b"//",
    b"@",
    b"0",
    b"1",
    b"65535",
    b"65536",
    b"-1",
    b"4294967296",
    b"::",
    b"/0",
    b"/33",
    b"/129",
    b"255.255.255.255",
    b"\"",
    b"{}",
    b"[]",
    b"null",
    b"true",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xe2\x80\xae",
    b"\t",
    b" ",
    b"=",
    b"==",
    b"eyJ",
    b"@timeout ",
    b"@token ",
    b"@cors ",
    b"@concurrent ",
];

/// One mutation of `input`.
pub fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = out.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = u8::try_from(rng.below(256)).unwrap_or(0);
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                out.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                out.drain(at..at + n);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let chunk: Vec<u8> = out[at..at + n].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, chunk);
            }
            5 if len > 0 => out.truncate(rng.below(len)),
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                let end = (at + token.len()).min(len);
                out.splice(at..end, token.iter().copied());
            }
        }
    }
    out
}

/// Runs `target` on every seed, then on `rounds` mutations of them.
pub fn drive(target: fn(&[u8]), seeds: &[Vec<u8>], rounds: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for s in seeds {
        target(s);
    }
    if seeds.is_empty() {
        return;
    }
    let mut pool: Vec<Vec<u8>> = seeds.to_vec();
    for _ in 0..rounds {
        let base = pool[rng.below(pool.len())].clone();
        let input = mutate(&base, &mut rng);
        target(&input);
        // Keep some mutants so mutations stack.
        if pool.len() < 256 && rng.below(8) == 0 {
            pool.push(input);
        }
    }
}
