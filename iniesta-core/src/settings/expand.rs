//! What the table of settings expands to.
//!
//! `expand_rows!` takes the rows of [`settings_table!`](super::table) as
//! they are written there:
//!
//! ```text
//! /// More about the field (optional).
//! field: Type {
//!     var: CONST_NAME = "VARIABLE_NAME",
//!     default: <expression>, shown as "<default in the doc table>",
//!     parse: <fn(&str) -> Result<Type, E>, E: Into<Rejection>>,
//!     redact: urls,                // optional: the value holds URLs
//!     doc: "<meaning in the doc table>",
//! },
//! ```

/// Expands the rows of the table into one of two things, named before
/// them (`doc; rows` or `items; rows`):
///
/// - `doc`: the doc table of the [`settings`](crate::settings) module, as
///   one string literal: a line per row, with its variable, its default and
///   its meaning;
/// - `items`: the `vars` module and its `ALL` list, the `Settings` struct,
///   its `Default` and its `Debug` (URLs redacted), and `Settings::read`,
///   which parses every variable.
macro_rules! expand_rows {
    (@pick doc, { $($doc:tt)* }, { $($items:tt)* }) => { $($doc)* };
    (@pick items, { $($doc:tt)* }, { $($items:tt)* }) => { $($items)* };
    (@shown $value:expr) => { $value };
    (@shown $value:expr, urls) => { &$crate::settings::redact::Redacted($value) };
    (@secret) => { false };
    (@secret urls) => { true };
    ($what:ident; $(
        $(#[$extra:meta])*
        $field:ident: $ty:ty {
            var: $var:ident = $name:literal,
            default: $default:expr, shown as $shown:literal,
            parse: $parse:expr,
            $(redact: $redact:ident,)?
            doc: $doc:literal $(,)?
        }
    ),* $(,)?) => { $crate::settings::expand::expand_rows! { @pick $what, {
        concat!(
            "| variable | default | meaning |\n",
            "|---|---|---|\n",
            $("| `", $name, "` | ", $shown, " | ", $doc, " |\n",)*
        )
    }, {
        /// The names of the environment variables [`Settings`] reads.
        pub mod vars {
            $(
                #[doc = concat!("`", $name, "`: ", $doc, ".")]
                pub const $var: &str = $name;
            )*

            /// Every variable above, in the order of the table.
            pub const ALL: &[&str] = &[$($var),*];
        }

        /// Every setting of the consumer, one field per variable. The
        /// [module docs](crate::settings) list the variables, their defaults
        /// and their meaning.
        ///
        /// `Debug` hides the secrets in URLs (see
        /// [`redact_url`](crate::settings::redact_url)), so settings can be
        /// logged.
        ///
        /// New settings come as new fields, so the struct is
        /// `#[non_exhaustive]`: start from [`Settings::default`] (or
        /// [`Settings::from_env`]) and set the fields you need.
        ///
        /// ```
        /// use std::time::Duration;
        /// use iniesta_core::settings::Settings;
        ///
        /// let mut settings = Settings::default();
        /// settings.max_in_flight = 4;
        /// settings.lock_timeout = Duration::from_secs(30);
        /// assert_eq!(settings.heartbeat(), Duration::from_secs(18)); // 0.6 × the lock timeout
        /// ```
        #[derive(Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Settings {
            $(
                #[doc = concat!("`", $name, "`: ", $doc, "; default ", $shown, ".")]
                #[doc = ""]
                $(#[$extra])*
                pub $field: $ty,
            )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $($field: $default,)*
                }
            }
        }

        impl ::std::fmt::Debug for Settings {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("Settings")
                    $(.field(
                        stringify!($field),
                        $crate::settings::expand::expand_rows!(@shown &self.$field $(, $redact)?),
                    ))*
                    .finish()
            }
        }

        impl Settings {
            /// Reads every variable through its parser, in the order of the
            /// table; one that is unset or rejected keeps its default (and
            /// `r` has the problem).
            pub(super) fn read(r: &mut $crate::settings::parse::Reader<'_>) -> Settings {
                Settings {
                    $($field: match r.read(
                        vars::$var,
                        $crate::settings::expand::expand_rows!(@secret $($redact)?),
                        $parse,
                    ) {
                        Some(value) => value,
                        None => $default,
                    },)*
                }
            }
        }
    } } };
}
pub(super) use expand_rows;
