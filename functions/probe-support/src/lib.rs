//! What the probe fixtures share: the query string and typed parameters.

/// A parameter as the query spells it: `bool:true`, `i8:`…`i64:`, `u8:`…`u64:`, `f32:`,
/// `f64:`, `str:text`, `hex:00ff` (binary), `null`, and for `pg3`/`pg4`
/// `date:2024-02-29`, `time:13:14:15.5`, `datetime:2024-02-29T13:14:15`, `timestamp:<secs>`;
/// for `pg4` also `uuid:`, `jsonb:<json>`, `decimal:`, `i32s:1,,3` (array; empty is NULL),
/// `strs:a,,c`, `interval:<micros>,<days>,<months>`, `i32range:<lower>,<upper>`
/// (inclusive lower, exclusive upper; empty is unbounded).
pub enum Param {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Str(String),
    Binary(Vec<u8>),
    Null,
    Date((i32, u8, u8)),
    Time((u8, u8, u8, u32)),
    Datetime((i32, u8, u8, u8, u8, u8, u32)),
    Timestamp(i64),
    Uuid(String),
    Jsonb(Vec<u8>),
    Decimal(String),
    I32s(Vec<Option<i32>>),
    Strs(Vec<Option<String>>),
    Interval(i64, i32, i32),
    I32Range(Option<i32>, Option<i32>),
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("bad number {text:?}"))
}

fn list<T>(text: &str, item: impl Fn(&str) -> Result<T, String>) -> Result<Vec<Option<T>>, String> {
    text.split(',')
        .map(|part| {
            if part.is_empty() {
                Ok(None)
            } else {
                item(part).map(Some)
            }
        })
        .collect()
}

fn date(text: &str) -> Result<(i32, u8, u8), String> {
    let mut parts = text.splitn(3, '-');
    let mut next = || parts.next().ok_or_else(|| format!("bad date {text:?}"));
    Ok((number(next()?)?, number(next()?)?, number(next()?)?))
}

fn time(text: &str) -> Result<(u8, u8, u8, u32), String> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let mut parts = clock.splitn(3, ':');
    let mut next = || parts.next().ok_or_else(|| format!("bad time {text:?}"));
    let nanos = number::<u32>(&format!("{fraction:0<9}"))?;
    Ok((number(next()?)?, number(next()?)?, number(next()?)?, nanos))
}

impl Param {
    /// Reads one `p=` value.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "null" {
            return Ok(Self::Null);
        }
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| format!("bad parameter {text:?}"))?;
        Ok(match kind {
            "bool" => Self::Bool(value == "true"),
            "i8" => Self::I8(number(value)?),
            "i16" => Self::I16(number(value)?),
            "i32" => Self::I32(number(value)?),
            "i64" => Self::I64(number(value)?),
            "u8" => Self::U8(number(value)?),
            "u16" => Self::U16(number(value)?),
            "u32" => Self::U32(number(value)?),
            "u64" => Self::U64(number(value)?),
            "f32" => Self::F32(number(value)?),
            "f64" => Self::F64(number(value)?),
            "str" => Self::Str(value.to_owned()),
            "hex" => Self::Binary(
                (0..value.len())
                    .step_by(2)
                    .map(|at| {
                        value
                            .get(at..at + 2)
                            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                            .ok_or_else(|| format!("bad hex {value:?}"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "date" => Self::Date(date(value)?),
            "time" => Self::Time(time(value)?),
            "datetime" => {
                let (day, clock) = value
                    .split_once('T')
                    .ok_or_else(|| format!("bad datetime {value:?}"))?;
                let (year, month, day) = date(day)?;
                let (hour, minute, second, nanos) = time(clock)?;
                Self::Datetime((year, month, day, hour, minute, second, nanos))
            }
            "timestamp" => Self::Timestamp(number(value)?),
            "uuid" => Self::Uuid(value.to_owned()),
            "jsonb" => Self::Jsonb(value.as_bytes().to_vec()),
            "decimal" => Self::Decimal(value.to_owned()),
            "i32s" => Self::I32s(list(value, number)?),
            "strs" => Self::Strs(list(value, |part| Ok(part.to_owned()))?),
            "interval" => {
                let parts = value.split(',').collect::<Vec<_>>();
                let [micros, days, months] = parts.as_slice() else {
                    return Err(format!("bad interval {value:?}"));
                };
                Self::Interval(number(micros)?, number(days)?, number(months)?)
            }
            "i32range" => {
                let (lower, upper) = value
                    .split_once(',')
                    .ok_or_else(|| format!("bad range {value:?}"))?;
                let bound = |part: &str| {
                    if part.is_empty() {
                        Ok(None)
                    } else {
                        number(part).map(Some)
                    }
                };
                Self::I32Range(bound(lower)?, bound(upper)?)
            }
            other => return Err(format!("unknown parameter type {other:?}")),
        })
    }

    /// Why this parameter cannot go through `interface`.
    pub fn unsupported(&self, interface: &str) -> String {
        format!("the probe cannot send this parameter through {interface}")
    }
}

/// The pairs of a query string, in order.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `query`.
    pub fn parse(query: &str) -> Self {
        Self(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `wanted`.
    pub fn get(&self, wanted: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of `wanted`, in order.
    pub fn all(&self, wanted: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(name, _)| name == wanted)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// The first value of `wanted`, or why there is none.
    pub fn require(&self, wanted: &str) -> Result<&str, String> {
        self.get(wanted)
            .ok_or_else(|| format!("missing query parameter {wanted:?}"))
    }
}
