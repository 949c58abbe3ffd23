//! Distributions and two-sample statistics behind `ks`, `chi2`, `psi`, `js` and
//! `wasserstein`, reproducing scipy's algorithms step by step (scipy 1.17: `ks_2samp`,
//! `kstwo`, `chi2_contingency`, `jensenshannon`, `wasserstein_distance`) so that results agree
//! to the last few bits, exact KS p-values included.

use statrs::distribution::{ChiSquared, ContinuousCDF};
use statrs::function::gamma::ln_gamma;

/// `scipy.stats.ks_2samp(a, b, method='auto')` on ascending samples: (statistic, p-value).
/// Both samples must be non-empty.
pub(crate) fn ks_2samp(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len(), b.len());
    // scipy evaluates both ECDFs at every pooled value; the extremes of their difference
    // occur at the distinct values, visited in one merge pass, cut in pieces on the cores
    // for large samples.
    let threads = if n1 + n2 >= PARALLEL_KS {
        crate::eval::cores()
    } else {
        1
    };
    let (max_s, min_s) = ecdf_extremes(a, b, threads);
    let min_s = (-min_s).clamp(0.0, 1.0);
    let d = if min_s > max_s { min_s } else { max_s };
    if n1.max(n2) <= 10_000
        && let Some((d, p)) = ks_exact(n1 as u64, n2 as u64, d)
    {
        return (d, p.clamp(0.0, 1.0));
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = m * n / (m + n);
    (d, kstwo_sf(en.round_ties_even() as u64, d).clamp(0.0, 1.0))
}

/// Pooled values from which [`ks_2samp`]'s pass is spread over the cores.
const PARALLEL_KS: usize = 1 << 20;

/// The largest and the smallest difference between the ECDFs of the ascending samples `a`
/// and `b` over their pooled values, in `threads * 4` pieces (one without NaN at either
/// end of a sample). Pieces are cut at values taken from `a`: a piece holds the values of
/// both samples from its cut (included) to the next (excluded), so equal values are never
/// parted and each piece walks its distinct values with the counts of the whole, as the
/// single pass does; the extremes of the pieces are those of the whole.
fn ecdf_extremes(a: &[f64], b: &[f64], threads: usize) -> (f64, f64) {
    let clean =
        |s: &[f64]| s.first().is_none_or(|x| !x.is_nan()) && s.last().is_none_or(|x| !x.is_nan());
    let pieces = if threads > 1 && clean(a) && clean(b) {
        threads * 4
    } else {
        1
    };
    let mut cuts = vec![(0, 0)];
    for k in 1..pieces {
        let p = a[a.len() * k / pieces];
        let cut = (a.partition_point(|x| *x < p), b.partition_point(|x| *x < p));
        let last = *cuts.last().unwrap_or(&(0, 0));
        cuts.push((cut.0.max(last.0), cut.1.max(last.1)));
    }
    cuts.push((a.len(), b.len()));
    let ranges: Vec<((usize, usize), (usize, usize))> =
        cuts.windows(2).map(|w| (w[0], w[1])).collect();
    let (n1, n2) = (a.len(), b.len());
    let walked = crate::eval::check::par_map(&ranges, pieces > 1, |&((i0, j0), (i1, j1))| {
        let (mut i, mut j) = (i0, j0);
        let (mut max_s, mut min_s) = (f64::NEG_INFINITY, f64::INFINITY);
        while i < i1 || j < j1 {
            let v = match (a[..i1].get(i), b[..j1].get(j)) {
                (Some(&x), Some(&y)) => x.min(y),
                (Some(&x), None) => x,
                (None, Some(&y)) => y,
                (None, None) => break,
            };
            while i < i1 && a[i] <= v {
                i += 1;
            }
            while j < j1 && b[j] <= v {
                j += 1;
            }
            let diff = i as f64 / n1 as f64 - j as f64 / n2 as f64;
            max_s = max_s.max(diff);
            min_s = min_s.min(diff);
        }
        (max_s, min_s)
    });
    walked
        .into_iter()
        .fold((f64::NEG_INFINITY, f64::INFINITY), |(hi, lo), (h, l)| {
            (hi.max(h), lo.min(l))
        })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// scipy's `_attempt_exact_2kssamp` (two-sided): the statistic rounded to the lattice of
/// `1 / lcm(n1, n2)` and its exact p-value, or `None` when the computation fails.
fn ks_exact(n1: u64, n2: u64, d: f64) -> Option<(f64, f64)> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return Some((d, 1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside_method(n1, n2, g, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// scipy's `_compute_prob_outside_square`: P(D_{n,n} >= h/n) by a Horner-like scheme.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as i64);
    let mut p = 0.0;
    let mut k = (n / h as f64).floor() as i64;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            let kh = (k * h) as f64;
            p1 = (n - kh - j as f64) * p1 / (n + kh + j as f64 + 1.0);
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// scipy's `_compute_outer_prob_inside_method` (Hodges' inside method computing 1 - p
/// directly, after Viehmann 2021).
fn outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let (mg, ng) = (m / g, n / g);
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for x in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *x = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = (((ng * i - h) as f64 / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = (((ng * i + h) as f64 / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let idx = (jj + minj - lastminj) as usize;
            let prev = a.get(idx).copied().unwrap_or(1.0);
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let from = (maxj - minj) as usize;
            let to = ((maxj - minj + (lastlen - curlen)) as usize).min(a.len());
            for x in a.iter_mut().take(to).skip(from) {
                *x = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

const E128: i32 = 128;

fn ep128() -> f64 {
    2f64.powi(E128)
}

fn em128() -> f64 {
    2f64.powi(-E128)
}

/// `scipy.stats.kstwo.sf(x, n)`: the survival function of the two-sided one-sample
/// Kolmogorov-Smirnov statistic (scipy's `_kolmogn`, Simard & L'Ecuyer 2011).
pub fn kstwo_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            let mut p = 1.0;
            for i in 1..=n {
                p *= i as f64 * (1.0 / nf) * (2.0 * t - 1.0);
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return (1.0 - kolmogn_dmtw(n, x)).clamp(0.0, 1.0);
        }
        if nxsquared <= 4.0 {
            return (1.0 - kolmogn_pomeranz(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw(n, x)
    } else {
        kolmogn_pelz_good(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    // scipy's Stirling coefficients, kept digit for digit.
    #[allow(clippy::excessive_precision)]
    const C: [f64; 8] = [
        -2.955065359477124183e-2,
        6.4102564102564102564e-3,
        -1.9175269175269175269e-3,
        8.4175084175084175084e-4,
        -5.952380952380952381e-4,
        7.9365079365079365079e-4,
        -2.7777777777777777778e-3,
        8.3333333333333333333e-2,
    ];
    let rn = 1.0 / n;
    let z = rn / n;
    let poly = C.iter().fold(0.0, |acc, c| acc * z + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * poly
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                out[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    out
}

/// Pr(D_n <= d) by the Durbin matrix (Marsaglia, Tsang, Wang 2003), as scipy's
/// `_kolmogn_DMTW`.
fn kolmogn_dmtw(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|i| 1.0 - h.powi(i as i32)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut pwr = vec![0.0; m * m];
    for i in 0..m {
        pwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let (mut expnt, mut hexpnt) = (0i32, 0i32);
    while nn > 0 {
        if nn % 2 == 1 {
            pwr = matmul(&pwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > ep128() {
            for x in hm.iter_mut() {
                *x /= ep128();
            }
            hexpnt += E128;
        }
        nn /= 2;
    }
    let mut p = pwr[(k - 1) * m + (k - 1)];
    for i in 1..=n {
        p = i as f64 * p / n as f64;
        if p.abs() < em128() {
            p *= ep128();
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p *= 2f64.powi(expnt);
    }
    p.clamp(0.0, 1.0)
}

fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Pr(D_n <= x) by Pomeranz's recursion, as scipy's `_kolmogn_Pomeranz`.
fn kolmogn_pomeranz(n: u64, x: f64) -> f64 {
    let n = n as i64;
    let t = n as f64 * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    let nf = n as f64;
    let (g_n, two_g_n, one_m2g_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let mut expnt = 0i32;
    let mut j1 = pomeranz_j1j2(0, n, ll, ceilf, roundf).0;
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (next_j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        j1 = next_j1;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            // numpy slices clip at the end of the array; so does this.
            let start = (k1 - v0s).max(0) as usize;
            let end = ((k1 - v0s + ln2).max(0) as usize).min(npwrs);
            let a = &v0[start.min(end)..end];
            let b = &pwrs[..(ln2 as usize).min(npwrs)];
            let conv_start = (j1 - k1) as usize;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            let full = a.len() + b.len() - 1;
            for (out, c) in (conv_start..(conv_start + conv_len).min(full)).enumerate() {
                // Entry c of the full convolution of a and b.
                let lo = c.saturating_sub(b.len() - 1);
                let hi = c.min(a.len() - 1);
                let mut s = 0.0;
                for p in lo..=hi {
                    s += a[p] * b[c - p];
                }
                v1[out] = s;
            }
            let mx = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < mx && mx < em128() {
                for x in v1.iter_mut() {
                    *x *= ep128();
                }
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = v1[(n - v1s) as usize];
    for m in 1..=n {
        if ans.abs() > ep128() {
            ans *= em128();
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans *= 2f64.powi(expnt);
    }
    ans.clamp(0.0, 1.0)
}

/// The Pelz-Good approximation of Pr(D_n <= x), as scipy's `_kolmogn_PelzGood`.
fn kolmogn_pelz_good(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut kk = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (kv, c) in kk.iter_mut().zip(coeffs) {
            *kv = *kv * qpower + c;
        }
    }
    let sqrt2pi = (2.0 * PI).sqrt();
    let div = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (kv, d) in kk.iter_mut().zip(div) {
        *kv = *kv * q * sqrt2pi / d;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for k in (1..=maxk).rev() {
        let kf = k as f64;
        let ksq = kf * kf;
        let qp = q.powf(ksq);
        k2extra += ksq * qp;
        let kspi = PI * kf;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    kk[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    kk[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    for (i, kv) in kk.iter_mut().enumerate() {
        *kv /= nf.powf(i as f64 / 2.0);
    }
    kk.iter().sum()
}

/// `scipy.special.smirnov(n, x)`: Pr(D+_n > x) for the one-sided statistic, by the
/// Birnbaum-Tingey sum, each (positive) term computed in log space.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(0.0..=1.0).contains(&x) || n == 0 {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let nx = nf * x;
    let nxfl = nx.floor();
    let alpha = nx - nxfl;
    if nxfl == 0.0 || (nxfl == 1.0 && alpha == 0.0) {
        return 1.0 - x * (1.0 + x).powf(nf - 1.0);
    }
    if -2.0 * nf * x * x < -708.3964185322641 {
        return 0.0;
    }
    if nxfl >= nf - 1.0 {
        return (1.0 - x).powf(nf);
    }
    if n > 1_000_000 {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        };
    }
    let ln_n_fact = ln_gamma(nf + 1.0);
    let mut terms_max = f64::NEG_INFINITY;
    let mut logs: Vec<f64> = Vec::new();
    let mut v = 0u64;
    loop {
        let base2 = (n - v) as f64 / nf - x;
        if base2 <= 0.0 {
            break;
        }
        let vf = v as f64;
        let ln_binom = ln_n_fact - ln_gamma(vf + 1.0) - ln_gamma(nf - vf + 1.0);
        let l = ln_binom + (vf - 1.0) * (vf / nf + x).ln() + (nf - vf) * base2.ln();
        terms_max = terms_max.max(l);
        logs.push(l);
        // Terms fall off quickly past the peak; stop once they cannot matter.
        if l < terms_max - 60.0 && logs.len() > 2 && l < logs[logs.len() - 2] {
            break;
        }
        v += 1;
        if v > n {
            break;
        }
    }
    let s: f64 = logs.iter().map(|l| (l - terms_max).exp()).sum();
    (x * s * terms_max.exp()).clamp(0.0, 1.0)
}

/// `chi2_contingency(table, correction=False)` on the 2×k table of counts: (statistic,
/// p-value, dof). Every column total and both row totals must be positive.
pub(crate) fn chi2_contingency(rows: [&[f64]; 2]) -> (f64, f64, f64) {
    let r0: f64 = rows[0].iter().sum();
    let r1: f64 = rows[1].iter().sum();
    let total = r0 + r1;
    let mut stat = 0.0;
    for (&a, &b) in rows[0].iter().zip(rows[1]) {
        let col = a + b;
        for (observed, row_total) in [(a, r0), (b, r1)] {
            let e = row_total * col / total;
            let d = observed - e;
            stat += d * d / e;
        }
    }
    let dof = (rows[0].len() - 1) as f64;
    (stat, chi2_sf(stat, dof), dof)
}

pub(crate) fn chi2_sf(x: f64, dof: f64) -> f64 {
    match ChiSquared::new(dof) {
        Ok(d) => d.sf(x),
        Err(_) => f64::NAN,
    }
}

/// scipy's `wasserstein_distance(u, v)` on ascending samples: the area between the ECDFs,
/// walking the pooled values in order (a merge, as both sides are already sorted).
pub(crate) fn wasserstein(u: &[f64], v: &[f64]) -> f64 {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut total = super::common::Sum::default();
    let mut prev: Option<f64> = None;
    while i < u.len() || j < v.len() {
        let x = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if let Some(p) = prev {
            // Between the previous pooled value and this one both ECDFs are constant.
            total.add((i as f64 / nu - j as f64 / nv).abs() * (x - p));
        }
        while i < u.len() && u[i] <= x {
            i += 1;
        }
        while j < v.len() && v[j] <= x {
            j += 1;
        }
        prev = Some(x);
    }
    total.value()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_ecdf_pass_in_pieces_finds_the_extremes_of_one_pass() {
        // Ties within and across samples, signed zeros, infinities, samples of one value,
        // more pieces than values.
        let mut next = crate::functions::common::draws(0x2545_f491_4f6c_dd1d);
        let pool = [
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1.0,
            1.5,
            3.0,
            f64::INFINITY,
        ];
        for round in 0..2000 {
            let mut side = |n: usize| -> Vec<f64> {
                let mut v: Vec<f64> = (0..n)
                    .map(|_| {
                        if round % 2 == 0 {
                            pool[next(pool.len() as u64) as usize]
                        } else {
                            next(1000) as f64 / 7.0
                        }
                    })
                    .collect();
                v.sort_unstable_by(f64::total_cmp);
                v
            };
            let (n, m) = (1 + round % 37, 1 + (round * 7) % 53);
            let a = side(n);
            let b = side(m);
            let one = super::ecdf_extremes(&a, &b, 1);
            for threads in [2, 3, 16] {
                let pieces = super::ecdf_extremes(&a, &b, threads);
                assert_eq!(
                    (pieces.0.to_bits(), pieces.1.to_bits()),
                    (one.0.to_bits(), one.1.to_bits()),
                    "{a:?} {b:?} {threads}"
                );
            }
        }
    }
}
