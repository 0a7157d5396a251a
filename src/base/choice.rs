//! Options spelled as strings (`mode='same'`, `padding_mode='reflect'`): each enum lists its
//! names once, beside its definition, through [`Choice`]; parsing, canonical names and the
//! "must be one of" text of errors all come from that one table.

/// An enum whose values are chosen by name.
pub trait Choice: Copy + PartialEq + Sized + 'static {
    /// Every accepted spelling and its value: the canonical name of each value first, then
    /// any aliases (`'pad'` for `'fill'`).
    const NAMES: &'static [(&'static str, Self)];
    /// How many leading entries of [`Choice::NAMES`] are public: the rest are private
    /// spellings of rconv's own (accepted, never listed in messages).
    const PUBLIC: usize = Self::NAMES.len();

    /// The value named `s` (exact, lower case), or `None`.
    fn parse(s: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|&(_, v)| v)
    }

    /// The canonical name of this value.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |&(n, _)| n)
    }

    /// The public names, as messages list them: `'a', 'b' or 'c'`.
    fn expected() -> String {
        let names: Vec<String> = Self::NAMES[..Self::PUBLIC]
            .iter()
            .map(|(n, _)| format!("'{n}'"))
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Choice;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Abc {
        A,
        B,
    }
    impl Choice for Abc {
        const NAMES: &'static [(&'static str, Self)] = &[
            ("a", Abc::A),
            ("b", Abc::B),
            ("bee", Abc::B),
            ("secret", Abc::A),
        ];
        const PUBLIC: usize = 3;
    }

    #[test]
    fn one_table_parses_names_and_lists_them() {
        assert_eq!(Abc::parse("bee"), Some(Abc::B));
        assert_eq!(Abc::parse("secret"), Some(Abc::A));
        assert_eq!(Abc::parse("A"), None);
        assert_eq!(Abc::B.name(), "b");
        assert_eq!(Abc::expected(), "'a', 'b' or 'bee'");
    }
}
