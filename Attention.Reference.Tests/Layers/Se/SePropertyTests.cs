using Attention.Reference.Layers;
using Attention.Reference.Ops;
using FsCheck.Xunit;

namespace Attention.Reference.Tests.Layers.Se;

/// <summary>FsCheck properties the SE issue names (seeds, shapes and variants drawn by FsCheck).</summary>
public sealed class SePropertyTests
{
    private static (int N, int C, int Hidden, int H, int W) Shape(int a, int b, int c, int d, int e) =>
        (1 + Math.Abs(a % 3), 1 + Math.Abs(b % 9), 1 + Math.Abs(c % 4), 1 + Math.Abs(d % 4), 1 + Math.Abs(e % 4));

    /// <summary>With fc1 all zero, h = b1 for every sample, so the gate is the constant gate(W2 relu(b1) + b2), Eq. (se.19).</summary>
    [Property(MaxTest = 60)]
    public void ZeroFc1GivesAConstantGate(int seed, int a, int b, int c, int d, int e, bool hard, bool max)
    {
        var (n, ch, hid, h, w) = Shape(a, b, c, d, e);
        var gate = hard ? SeGate.HardSigmoid : SeGate.Sigmoid;
        var (o, x, _, p) = SeTestData.Random(seed, n, ch, hid, h, w, true, gate, max ? SePool.Max : SePool.Avg, weightScale: 3);
        Array.Clear(p.W1.Data);
        var st = SeRun.Forward(o, x, p);
        for (int k = 0; k < ch; k++)
        {
            double ev = p.B2!.Data[k];
            for (int j = 0; j < hid; j++) ev += p.W2.Data[k * hid + j] * Activations.Relu(p.B1!.Data[j]);
            double expected = hard ? Activations.HardSigmoid(ev) : Activations.Sigmoid(ev);
            for (int s = 0; s < n; s++) Assert.Equal(expected, st.S[s, k], 1e-14);
        }
    }

    /// <summary>A huge positive fc2 bias saturates the gate at 1, so y ≈ x (exactly x for hard-sigmoid and float64 sigmoid).</summary>
    [Property(MaxTest = 60)]
    public void HugePositiveFc2BiasPassesXThrough(int seed, int a, int b, int c, int d, int e, bool hard, bool max)
    {
        var (n, ch, hid, h, w) = Shape(a, b, c, d, e);
        var (o, x, _, p) = SeTestData.Random(seed, n, ch, hid, h, w, true, hard ? SeGate.HardSigmoid : SeGate.Sigmoid, max ? SePool.Max : SePool.Avg);
        for (int k = 0; k < ch; k++) p.B2!.Data[k] = 1e3;
        var y = SeRun.Forward(o, x, p).Y;
        for (int i = 0; i < x.Length; i++) Assert.Equal(x.Data[i], y.Data[i]);
        // And in the fast float32 path.
        var yf = SeRun.Forward(o, x.Cast<float>(), SeTestData.ToFloat(o, p), KernelPath.Fast).Y;
        for (int i = 0; i < x.Length; i++) Assert.Equal((float)x.Data[i], yf.Data[i]);
    }

    /// <summary>
    /// The sigmoid gate stays in the open interval (0, 1) wherever float64 can represent it there: for |e| &lt; 36
    /// (beyond about 36.7, 1/(1 + exp(−e)) rounds to exactly 1); it stays in [0, 1] always, so |y| ≤ |x|.
    /// </summary>
    [Property(MaxTest = 100)]
    public void SigmoidGateStaysInTheOpenUnitInterval(int seed, int a, int b, int c, int d, int e, bool bias, bool max)
    {
        var (n, ch, hid, h, w) = Shape(a, b, c, d, e);
        var (o, x, _, p) = SeTestData.Random(seed, n, ch, hid, h, w, bias, SeGate.Sigmoid, max ? SePool.Max : SePool.Avg, weightScale: 4);
        var st = SeRun.Forward(o, x, p);
        for (int i = 0; i < st.S.Length; i++)
        {
            double s = st.S.Data[i], ev = st.E.Data[i];
            if (Math.Abs(ev) < 36) Assert.True(s > 0 && s < 1, $"s = {s} for e = {ev}");
            else Assert.InRange(s, 0.0, 1.0);
        }
        for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(st.Y.Data[i]) <= Math.Abs(x.Data[i]));
    }

    /// <summary>The same at the edges: e = ±35.9 is still strictly inside (0, 1); a saturated e = 40 gives exactly 1.</summary>
    [Fact]
    public void SigmoidGateEdges()
    {
        var (o, x, _, p) = SeTestData.Random(1, 1, 3, 1, 1, 1, true, SeGate.Sigmoid, SePool.Avg);
        Array.Clear(p.W2.Data);
        p.B2!.Data[0] = 35.9;
        p.B2.Data[1] = -35.9;
        p.B2.Data[2] = 40;
        var s = SeRun.Forward(o, x, p).S.Data;
        Assert.True(s[0] > 0 && s[0] < 1);
        Assert.True(s[1] > 0 && s[1] < 1);
        Assert.Equal(1.0, s[2]);
    }

    /// <summary>The hard-sigmoid gate stays in the closed interval [0, 1].</summary>
    [Property(MaxTest = 40)]
    public void HardSigmoidGateStaysInTheClosedUnitInterval(int seed, int a, int b, int c, int d, int e, bool bias)
    {
        var (n, ch, hid, h, w) = Shape(a, b, c, d, e);
        var (o, x, _, p) = SeTestData.Random(seed, n, ch, hid, h, w, bias, SeGate.HardSigmoid, SePool.Avg, weightScale: 8);
        var st = SeRun.Forward(o, x, p);
        Assert.All(st.S.Data, s => Assert.InRange(s, 0.0, 1.0));
    }

    /// <summary>y is linear in x along the scale path: the gradient w.r.t. x of ⟨y, dy⟩ minus the squeeze path equals dy·s.</summary>
    [Property(MaxTest = 40)]
    public void DxIsScalePathPlusSqueezePath(int seed, int a, int b, int c, int d, int e, bool bias)
    {
        var (n, ch, hid, h, w) = Shape(a, b, c, d, e);
        var (o, x, dy, p) = SeTestData.Random(seed, n, ch, hid, h, w, bias, SeGate.Sigmoid, SePool.Avg);
        var st = SeRun.Forward(o, x, p);
        var trace = new Tensors.TraceLog();
        var g = SeRun.Backward(o, p, st, dy, trace);
        var dz = trace.Steps.Single(s => s.Name == "dz").Value;
        int plane = h * w;
        for (int q = 0; q < n * ch; q++)
            for (int i = 0; i < plane; i++)
                Assert.Equal(dy.Data[q * plane + i] * st.S.Data[q] + dz.Data[q] / plane, g.Dx.Data[q * plane + i], 1e-15);
    }

    /// <summary>
    /// Every float64 reduction of the paper's SE in its documented order, bit for bit: the whole forward and backward
    /// written out here as plain loops — plane sums over h then w; each FC output a chain over its inputs ascending from
    /// 0, then the bias; ∂r over c and ∂z over j ascending; the parameter gradients over n ascending — against the layer,
    /// for 1, 2 and 3 threads, with and without biases.
    /// </summary>
    [Xunit.Theory]
    [Xunit.InlineData(true)]
    [Xunit.InlineData(false)]
    public void EveryReductionHasItsDocumentedOrderBitForBit(bool bias)
    {
        int n = 3, c = 20, hid = 5, h = 5, w = 7, plane = h * w;
        var (o, x, dy, p) = SeTestData.Random(23, n, c, hid, h, w, bias, SeGate.Sigmoid, SePool.Avg);
        double[] w1 = p.W1.Data, w2 = p.W2.Data;
        double B1(int j) => p.B1 is null ? 0 : p.B1.Data[j];
        double B2(int k) => p.B2 is null ? 0 : p.B2.Data[k];
        var (z, hh, r, e, sg) = (new double[n * c], new double[n * hid], new double[n * hid], new double[n * c], new double[n * c]);
        for (int q = 0; q < n * c; q++)
        {
            double sum = 0;
            for (int i = 0; i < plane; i++) sum += x.Data[q * plane + i];
            z[q] = sum / plane;
        }
        for (int b = 0; b < n; b++)
        {
            for (int j = 0; j < hid; j++)
            {
                double acc = 0;
                for (int k = 0; k < c; k++) acc += w1[j * c + k] * z[b * c + k];
                hh[b * hid + j] = bias ? acc + B1(j) : acc;
                r[b * hid + j] = Math.Max(hh[b * hid + j], 0);
            }
            for (int k = 0; k < c; k++)
            {
                double acc = 0;
                for (int j = 0; j < hid; j++) acc += w2[k * hid + j] * r[b * hid + j];
                e[b * c + k] = bias ? acc + B2(k) : acc;
                sg[b * c + k] = 1 / (1 + Math.Exp(-e[b * c + k]));
            }
        }
        var y = new double[x.Length];
        for (int q = 0; q < n * c; q++) for (int i = 0; i < plane; i++) y[q * plane + i] = x.Data[q * plane + i] * sg[q];
        var (de, dh, dz) = (new double[n * c], new double[n * hid], new double[n * c]);
        for (int q = 0; q < n * c; q++)
        {
            double ds = 0;
            for (int i = 0; i < plane; i++) ds += dy.Data[q * plane + i] * x.Data[q * plane + i];
            de[q] = ds * ((1 - sg[q]) * sg[q]);
        }
        for (int b = 0; b < n; b++)
        {
            for (int j = 0; j < hid; j++)
            {
                double acc = 0;
                for (int k = 0; k < c; k++) acc += w2[k * hid + j] * de[b * c + k];
                dh[b * hid + j] = hh[b * hid + j] > 0 ? acc : 0 * acc;
            }
            for (int k = 0; k < c; k++)
            {
                double acc = 0;
                for (int j = 0; j < hid; j++) acc += w1[j * c + k] * dh[b * hid + j];
                dz[b * c + k] = acc;
            }
        }
        var dx = new double[x.Length];
        for (int q = 0; q < n * c; q++) for (int i = 0; i < plane; i++) dx[q * plane + i] = dy.Data[q * plane + i] * sg[q] + dz[q] / plane;
        var (dw1, dw2, db1, db2) = (new double[hid * c], new double[c * hid], new double[hid], new double[c]);
        for (int j = 0; j < hid; j++)
            for (int k = 0; k < c; k++)
            {
                double a1 = 0, a2 = 0;
                for (int b = 0; b < n; b++)
                {
                    a1 += dh[b * hid + j] * z[b * c + k];
                    a2 += de[b * c + k] * r[b * hid + j];
                }
                dw1[j * c + k] = a1;
                dw2[k * hid + j] = a2;
            }
        for (int j = 0; j < hid; j++) for (int b = 0; b < n; b++) db1[j] += dh[b * hid + j];
        for (int k = 0; k < c; k++) for (int b = 0; b < n; b++) db2[k] += de[b * c + k];
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var (st, g) = Attention.Reference.Tensors.Compute.WithThreads(threads, () =>
            {
                var f = SeRun.Forward(o, x, p);
                return (f, SeRun.Backward(o, p, f, dy));
            });
            Xunit.Assert.Equal(y, st.Y.Data);
            Xunit.Assert.Equal(dx, g.Dx.Data);
            Xunit.Assert.Equal(dw1, g.DW1.Data);
            Xunit.Assert.Equal(dw2, g.DW2.Data);
            if (bias)
            {
                Xunit.Assert.Equal(db1, g.DB1!.Data);
                Xunit.Assert.Equal(db2, g.DB2!.Data);
            }
        }
    }
}
