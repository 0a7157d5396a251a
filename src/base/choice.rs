//! Options spelled as strings (`mode='same'`, `padding_mode='reflect'`): each enum lists its
//! names once, in its definition, through [`Choice`] (written by the [`choice!`] macro, which
//! defines the enum and its table together); parsing, canonical names and the "must be one
//! of" text of errors all come from that one table.

/// Defines an enum whose values are chosen by name, and its [`Choice`] table: each variant
/// with its canonical name and any aliases (`Fill = "fill" | "pad"`). Variants after
/// `@private` are accepted but never listed in messages.
///
/// ```ignore
/// choice! {
///     /// Output size rule.
///     pub enum Mode { Full = "full", Valid = "valid", Same = "same" }
/// }
/// ```
#[macro_export]
macro_rules! choice {
    (
        $(#[$m:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vm:meta])* $v:ident = $($s:literal)|+,)+
            $(@private $($(#[$pm:meta])* $pv:ident = $ps:literal,)+)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vm])* $v,)+
            $($($(#[$pm])* $pv,)+)?
        }

        impl $crate::base::choice::Choice for $name {
            const NAMES: &'static [(&'static str, Self)] =
                &[$($(($s, $name::$v),)+)+ $($(($ps, $name::$pv),)+)?];
            const PUBLIC: usize = [$($($s,)+)+].len();
        }
    };
}

/// An enum whose values are chosen by name.
pub trait Choice: Copy + PartialEq + Sized + 'static {
    /// Every accepted spelling and its value, each value's canonical name before its aliases
    /// (`("fill", Fill), ("pad", Fill), ("symm", Symm), ...`); messages list the aliases too.
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

    crate::choice! {
        enum Abc {
            A = "a",
            B = "b" | "bee",
            @private
            Secret = "secret",
        }
    }

    #[test]
    fn one_table_parses_names_and_lists_them() {
        assert_eq!(Abc::parse("bee"), Some(Abc::B));
        assert_eq!(Abc::parse("secret"), Some(Abc::Secret));
        assert_eq!(Abc::parse("A"), None);
        assert_eq!(Abc::B.name(), "b");
        assert_eq!(Abc::expected(), "'a', 'b' or 'bee'");
    }
}
