//! The little dense linear algebra the surrogate needs: a Cholesky factorisation with jitter
//! retries and the triangular solves. Matrices are row-major `n × n` `Vec<f64>`.

/// Lower-triangular Cholesky factor of a symmetric positive definite matrix.
#[derive(Clone, Debug)]
pub(crate) struct Cholesky {
    n: usize,
    l: Vec<f64>,
    /// Jitter that had to be added to the diagonal to factorise (0 when none).
    pub(crate) jitter: f64,
}

impl Cholesky {
    /// Factorise `a`; when it is not numerically positive definite, retry with growing jitter on
    /// the diagonal (relative to its mean). `None` when even the largest jitter fails or the
    /// input holds a non-finite number.
    pub(crate) fn new(a: &[f64], n: usize) -> Option<Self> {
        if a.len() != n * n || a.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let scale = (0..n).map(|i| a[i * n + i].abs()).sum::<f64>() / n.max(1) as f64;
        let scale = if scale > 0.0 { scale } else { 1.0 };
        for jitter in [0.0, 1e-10, 1e-8, 1e-6, 1e-4] {
            if let Some(l) = factor(a, n, jitter * scale) {
                return Some(Self {
                    n,
                    l,
                    jitter: jitter * scale,
                });
            }
        }
        None
    }

    /// Solve `L x = b`.
    pub(crate) fn solve_lower(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x = b.to_vec();
        for i in 0..n {
            let row = &self.l[i * n..i * n + i];
            let s: f64 = row.iter().zip(&x[..i]).map(|(l, x)| l * x).sum();
            x[i] = (x[i] - s) / self.l[i * n + i];
        }
        x
    }

    /// Solve `Lᵀ x = b`.
    pub(crate) fn solve_upper(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x = b.to_vec();
        for i in (0..n).rev() {
            let mut s = 0.0;
            for (k, xk) in x.iter().enumerate().skip(i + 1) {
                s += self.l[k * n + i] * xk;
            }
            x[i] = (x[i] - s) / self.l[i * n + i];
        }
        x
    }

    /// Solve `A x = b` with `A = L Lᵀ`.
    pub(crate) fn solve(&self, b: &[f64]) -> Vec<f64> {
        self.solve_upper(&self.solve_lower(b))
    }

    /// `log det A = 2 Σ log L_ii`.
    pub(crate) fn log_det(&self) -> f64 {
        2.0 * (0..self.n)
            .map(|i| self.l[i * self.n + i].ln())
            .sum::<f64>()
    }
}

fn factor(a: &[f64], n: usize, jitter: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            if i == j {
                s += jitter;
            }
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_known_system() {
        // A = [[4,2],[2,3]], b = [2,1] → x = [0.5, 0]
        let a = [4.0, 2.0, 2.0, 3.0];
        let c = Cholesky::new(&a, 2).unwrap();
        let x = c.solve(&[2.0, 1.0]);
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!((c.log_det() - 8f64.ln()).abs() < 1e-12);
        assert_eq!(c.jitter, 0.0);
    }

    #[test]
    fn jitter_rescues_a_singular_matrix_and_nan_is_refused() {
        let a = [1.0, 1.0, 1.0, 1.0];
        let c = Cholesky::new(&a, 2).unwrap();
        assert!(c.jitter > 0.0);
        assert!(Cholesky::new(&[f64::NAN, 0.0, 0.0, 1.0], 2).is_none());
        assert!(Cholesky::new(&[-1.0, 0.0, 0.0, -1.0], 2).is_none());
    }
}
