//! A small calculator: + - * / ^ and parentheses over decimal numbers, by recursive descent.

#[derive(Debug, PartialEq)]
pub enum CalcError {
    Syntax,
    DivideByZero,
}

pub fn eval(expr: &str) -> Result<f64, CalcError> {
    let tokens = tokenize(expr)?;
    let mut p = Parser { tokens, at: 0 };
    let v = p.expr()?;
    if p.at != p.tokens.len() {
        return Err(CalcError::Syntax);
    }
    Ok(v)
}

/// A number as it should be said: no trailing ".0", at most 6 decimals.
pub fn format(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Op(char),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, CalcError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let n: String = chars[start..i].iter().collect();
            out.push(Tok::Num(n.parse().map_err(|_| CalcError::Syntax)?));
        } else if "+-*/^()".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            return Err(CalcError::Syntax);
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<Tok> {
        self.tokens.get(self.at).copied()
    }

    fn expr(&mut self) -> Result<f64, CalcError> {
        let mut v = self.term()?;
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.peek() {
            self.at += 1;
            let r = self.term()?;
            v = if op == '+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<f64, CalcError> {
        let mut v = self.power()?;
        while let Some(Tok::Op(op @ ('*' | '/'))) = self.peek() {
            self.at += 1;
            let r = self.power()?;
            if op == '/' && r == 0.0 {
                return Err(CalcError::DivideByZero);
            }
            v = if op == '*' { v * r } else { v / r };
        }
        Ok(v)
    }

    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.unary()?;
        if let Some(Tok::Op('^')) = self.peek() {
            self.at += 1;
            return Ok(base.powf(self.power()?));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<f64, CalcError> {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.at += 1;
                Ok(-self.unary()?)
            }
            Some(Tok::Num(n)) => {
                self.at += 1;
                Ok(n)
            }
            Some(Tok::Op('(')) => {
                self.at += 1;
                let v = self.expr()?;
                if self.peek() != Some(Tok::Op(')')) {
                    return Err(CalcError::Syntax);
                }
                self.at += 1;
                Ok(v)
            }
            _ => Err(CalcError::Syntax),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        assert_eq!(eval("12 * 7").unwrap(), 84.0);
        assert_eq!(eval("2 + 3 * 4").unwrap(), 14.0);
        assert_eq!(eval("(2 + 3) * 4").unwrap(), 20.0);
        assert_eq!(eval("2 ^ 3 ^ 2").unwrap(), 512.0);
        assert_eq!(eval("-3 + 1").unwrap(), -2.0);
        assert_eq!(format(eval("10 / 4").unwrap()), "2.5");
        assert_eq!(format(eval("1 / 3").unwrap()), "0.333333");
        assert_eq!(eval("1 / 0"), Err(CalcError::DivideByZero));
        assert_eq!(eval("2 +"), Err(CalcError::Syntax));
    }
}
