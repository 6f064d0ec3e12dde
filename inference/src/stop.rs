//! Stop strings while streaming: text that might be the start of a stop
//! string is held back until it is clear, and generation ends at the first
//! stop string, which is not part of the output.

/// Streams text through a set of stop strings.
#[derive(Debug, Default)]
pub struct StopFilter {
    stops: Vec<String>,
    held: String,
}

impl StopFilter {
    /// A filter for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds `text`; returns what may be shown now and whether a stop
    /// string was reached (then nothing more should be generated).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let out = self.held[..at].to_owned();
            self.held.clear();
            return (out, true);
        }
        // Keep the longest tail that is a prefix of some stop string.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_owned();
        self.held.drain(..cut);
        (out, false)
    }

    /// The text still held at the end of generation.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of
/// `stop`, on character boundaries.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && stop.is_char_boundary(n)
                && text.ends_with(&stop[..n])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| (*s).to_owned()).collect();
        let mut f = StopFilter::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let (o, stop) = f.push(p);
            out.push_str(&o);
            if stop {
                return (out, true);
            }
        }
        out.push_str(&f.finish());
        (out, false)
    }

    #[test]
    fn a_stop_string_split_across_pieces_ends_the_output_before_it() {
        assert_eq!(
            run(&["\nUser:"], &["Hello", " there\nUs", "er: more"]),
            ("Hello there".into(), true)
        );
    }

    #[test]
    fn held_text_that_turns_out_not_to_stop_is_released() {
        let stops: Vec<String> = vec!["STOP".into()];
        let mut f = StopFilter::new(&stops);
        assert_eq!(f.push("abcST"), ("abc".into(), false));
        assert_eq!(f.push("OX"), ("STOX".into(), false));
        assert_eq!(run(&["STOP"], &["xS", "T"]), ("xST".into(), false));
    }

    #[test]
    fn the_earliest_of_several_stops_wins_and_unicode_is_safe() {
        assert_eq!(run(&["b", "a"], &["xyzab"]), ("xyz".into(), true));
        assert_eq!(run(&["€x"], &["1€", "€x2"]), ("1€".into(), true));
        assert_eq!(run(&[], &["free"]), ("free".into(), false));
        assert_eq!(
            run(&[""], &["empty stop ignored"]),
            ("empty stop ignored".into(), false)
        );
    }
}
