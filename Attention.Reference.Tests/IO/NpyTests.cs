using System.Text;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.IO;

public class NpyTests
{
    private static byte[] Npy1(string dict, byte[] data)
    {
        string header = dict.PadRight(118) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.Add(1); bytes.Add(0);
        bytes.Add((byte)(header.Length & 0xff)); bytes.Add((byte)(header.Length >> 8));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    [Theory]
    [InlineData(null)]
    [InlineData(2)]
    public void RoundTripsFloat64(int? version)
    {
        var t = new DenseTensor<double>([1, -2.5, Math.E, 0, -0.0, 1e-310], 2, 3);
        var bytes = Npy.Serialize(t, version);
        Assert.Equal(version ?? 1, bytes[6]);
        Assert.Equal(0, (bytes.Length - t.Length * 8) % 64);
        var back = Npy.Parse(bytes, "t");
        Assert.Equal(StoredDType.F64, back.DType);
        Bitwise.AssertIdentical(t, back.ToTensor<double>(), "t");
    }

    [Fact]
    public void RoundTripsFloat32AndVectorsAndScalars()
    {
        var v = new DenseTensor<float>([0.1f, 0.2f, 0.3f], 3);
        Bitwise.AssertIdentical(v, Npy.Parse(Npy.Serialize(v), "v").ToTensor<float>(), "v");
        Assert.Contains("'shape': (3,)", Encoding.Latin1.GetString(Npy.Serialize(v)));
        var s = new DenseTensor<double>([7.0]);
        Assert.Empty(Npy.Parse(Npy.Serialize(s), "s").Shape);
    }

    [Fact]
    public void ReadsNumpyStyleHeader()
    {
        var data = BitConverter.GetBytes(2.0).Concat(BitConverter.GetBytes(3.0)).ToArray();
        var t = Npy.Parse(Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data), "t");
        Assert.Equal([2.0, 3.0], t.Values);
    }

    [Fact]
    public void RefusesFortranOrder() =>
        Assert.Contains("Fortran-order", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1("{'descr': '<f8', 'fortran_order': True, 'shape': (1, 1), }", new byte[8]), "t")).Message);

    [Theory]
    [InlineData("<i4")]
    [InlineData(">f8")]
    [InlineData("<f2")]
    [InlineData("|b1")]
    public void RefusesOtherDTypes(string descr) =>
        Assert.Contains($"dtype '{descr}' is not supported", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}", new byte[8]), "t")).Message);

    [Fact]
    public void RefusesBadMagicTruncationAndVersion3()
    {
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => Npy.Parse(new byte[20], "t")).Message);
        Assert.Contains("needs 16 data bytes, the file has 8", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", new byte[8]), "t")).Message);
        // Too long as well as too short: trailing bytes after the data are refused, not ignored.
        Assert.Contains("needs 8 data bytes, the file has 9", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", new byte[9]), "t")).Message);
        Assert.Contains("needs 4 data bytes, the file has 8", Assert.Throws<InvalidDataException>(() =>
            Npy.Parse(Npy1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new byte[8]), "t")).Message);
        var v3 = Npy1("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", new byte[8]);
        v3[6] = 3;
        Assert.Contains("version 3.0", Assert.Throws<InvalidDataException>(() => Npy.Parse(v3, "t")).Message);
        Assert.Contains("not a dict", Assert.Throws<InvalidDataException>(() => Npy.Parse(Npy1("{'descr': '<f8'}", new byte[8]), "t")).Message);
    }

    /// <summary>A .npy file of the given version with <paramref name="header"/> as the header bytes, verbatim.</summary>
    private static byte[] NpyRaw(byte major, byte[] header, byte[] data)
    {
        byte[] length = major == 1 ? BitConverter.GetBytes((ushort)header.Length) : BitConverter.GetBytes((uint)header.Length);
        return [0x93, .. "NUMPY"u8, major, 0, .. length, .. header, .. data];
    }

    private static string Refusal(byte[] bytes)
    {
        var e = Assert.Throws<InvalidDataException>(() => Npy.Parse(bytes, "t", "t.npy"));
        Assert.StartsWith("t.npy: ", e.Message);
        return e.Message;
    }

    [Theory]
    [InlineData("(2147483647, 2147483647, 2147483647)")]   // the element count overflows
    [InlineData("(1073741824, 1073741824, 2)")]            // the count fits, the byte size (· 8) wraps to 0
    public void RefusesAByteSizeThatOverflows64BitsNamingTheFile(string shape) =>
        Assert.Contains("overflows", Refusal(Npy1($"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}", [])));

    [Theory]
    [InlineData("(0, 5)", new[] { 0, 5 })]
    [InlineData("(5, 0)", new[] { 5, 0 })]
    [InlineData("(0,)", new[] { 0 })]
    [InlineData("(2147483647, 2147483647, 2147483647, 0)", new[] { int.MaxValue, int.MaxValue, int.MaxValue, 0 })]
    public void ReadsZeroElementArrays(string shapeText, int[] shape)
    {
        var t = Npy.Parse(Npy1($"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}", []), "t", "t.npy");
        Assert.Equal(shape, t.Shape);
        Assert.Empty(t.Values);
    }

    [Theory]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }")]
    [InlineData("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}")]
    [InlineData("{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2, 3,)}")]
    [InlineData("{\t'descr'\t:\t'<f8'\t,'fortran_order':False,'shape':(2,3),\t}")]
    [InlineData("  {'descr': '<f8',\n 'fortran_order': False,\r\n 'shape': (2,\n 3)\n}\n")]
    public void ParsesDictLiteralsAsNumpyWritesThemOrVariants(string dict)
    {
        var t = Npy.Parse(Npy1(dict, new byte[48]), "t", "t.npy");
        Assert.Equal([2, 3], t.Shape);
        Assert.Equal(StoredDType.F64, t.DType);
    }

    [Theory]
    [InlineData("()", new int[0])]
    [InlineData("( )", new int[0])]
    [InlineData("(1,)", new[] { 1 })]
    [InlineData("(0,)", new[] { 0 })]
    [InlineData("(00, 1)", new[] { 0, 1 })]   // Python reads 00 as 0 (but refuses 03)
    [InlineData("(1, 1, 1, 1, )", new[] { 1, 1, 1, 1 })]
    public void ParsesShapeTuples(string shapeText, int[] shape) =>
        Assert.Equal(shape, Npy.Parse(Npy1($"{{'descr': '<f8', 'fortran_order': False, 'shape': {shapeText}}}",
            new byte[shape.Contains(0) ? 0 : 8]), "t", "t.npy").Shape);

    [Theory]
    [InlineData("'shape': (3)", "not a tuple")]
    [InlineData("'shape': (,)", "shape")]
    [InlineData("'shape': (3,,)", "shape")]
    [InlineData("'shape': (,3)", "shape")]
    [InlineData("'shape': (03,)", "leading zero")]
    [InlineData("'shape': (3 4)", "shape")]
    [InlineData("'shape': (-3,)", "shape")]
    [InlineData("'shape': [3]", "not a tuple")]
    [InlineData("'shape': 3", "not a tuple")]
    [InlineData("'shape': (3.0,)", "shape")]
    [InlineData("'shape': (3,", "shape")]
    public void RefusesShapesNumpyRefuses(string shapeItem, string expected) =>
        Assert.Contains(expected, Refusal(Npy1($"{{'descr': '<f8', 'fortran_order': False, {shapeItem}}}", new byte[24])));

    [Theory]
    [InlineData("{'descr': '<f8', 'fortran_order': False}", "missing 'shape'")]
    [InlineData("{'descr': '<f8', 'shape': (3,)}", "missing 'fortran_order'")]
    [InlineData("{}", "missing 'descr'")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'extra': 1}", "unknown key 'extra'")]
    [InlineData("{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}", "'fortran_order' must be True or False")]
    [InlineData("{'descr': '<f8', 'fortran_order': false, 'shape': (3,)}", "'fortran_order' must be True or False")]
    [InlineData("{'descr': '<f8', 'fortran_order': Falsey, 'shape': (3,)}", "'fortran_order' must be True or False")]
    [InlineData("{'descr': <f8, 'fortran_order': False, 'shape': (3,)}", "'descr' must be a string")]
    [InlineData("{'descr': '<f8\", 'fortran_order': False, 'shape': (3,)}", "after the value of 'descr'")]
    [InlineData("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,)}", "'descr' must be a string")]
    [InlineData("{'descr': '<f8' 'fortran_order': False, 'shape': (3,)}", "expected ','")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (3,),,}", "expected a quoted key")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} x", "after the closing '}'")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)", "expected ',' or '}' after the value of 'shape'")]
    [InlineData("x{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", "a dict literal starting with '{'")]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}}", "after the closing '}'")]
    [InlineData("{'de\\scr': '<f8', 'fortran_order': False, 'shape': (3,)}", "escapes in strings are not supported")]
    [InlineData("{descr: '<f8', 'fortran_order': False, 'shape': (3,)}", "expected a quoted key")]
    [InlineData("", "a dict literal starting with '{'")]
    public void RefusesHeadersNumpyRefuses(string dict, string expected) =>
        Assert.Contains(expected, Refusal(Npy1(dict, new byte[24])));

    /// <summary>literal_eval takes these and numpy would read them, but numpy never writes them; refusing is safer.</summary>
    [Theory]
    [InlineData("'shape': (3,), 'descr': '<f8'", "'descr' twice")]                        // the last would win
    [InlineData("'shape': (3,), 'fortran_order': True", "'fortran_order' twice")]
    [InlineData("'shape': (3,)} # comment", "after the closing '}'")]
    [InlineData("'shape': (+3,)", "'shape' must be a tuple of non-negative integers")]
    [InlineData("'shape': (3_0,)", "expected ',' or ')' between the entries of 'shape'")]
    [InlineData("'shape': (3L,)", "expected ',' or ')' between the entries of 'shape'")]  // Python 2's long
    [InlineData("'shape': (True,)", "'shape' must be a tuple of non-negative integers")]
    [InlineData("'descr': u'<f8'", "'descr' must be a string")]
    [InlineData("'shape': (2147483648,)", "too large")]                                   // more than an int holds
    [InlineData("'shape': (99999999999999999999999999, 0)", "too large")]
    public void RefusesWhatNumpyReadsButNeverWrites(string items, string expected)
    {
        string dict = items.StartsWith("'descr'", StringComparison.Ordinal)
            ? $"{{'fortran_order': False, 'shape': (3,), {items}}}"
            : $"{{'descr': '<f8', 'fortran_order': False, {items}" + (items.EndsWith('}') ? "" : "}");
        Assert.Contains(expected, Refusal(Npy1(dict, new byte[24])));
    }

    [Theory]
    [InlineData(0xA0)]   // no-break space in Latin-1: whitespace to .NET, not to Python
    [InlineData(0x85)]   // next line
    [InlineData(0xE9)]   // é
    [InlineData(0x00)]   // NUL
    [InlineData(0x0B)]   // vertical tab: not whitespace to Python's tokenizer
    [InlineData(0x7F)]   // DEL
    public void RefusesNonAsciiOrControlBytesAnywhereInTheHeader(int b)
    {
        const string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
        foreach (int at in new[] { 1, dict.IndexOf('(') + 1, dict.Length + 2 })
        {
            byte[] header = Encoding.ASCII.GetBytes(dict.PadRight(118) + "\n");
            header[at] = (byte)b;
            Refusal(NpyRaw(1, header, new byte[24]));
        }
    }

    [Fact]
    public void ParsesLongWhitespaceRunsInLinearTime()
    {
        // The regex parser this replaced backtracked over how to split each whitespace run between its two \s*:
        // a 1.3 KB header like this took 10-18 s to refuse. The format allows 64 KB headers in version 1.0.
        string run = new(' ', 400);
        string bad = $"{{'descr': '<f8'{run}'fortran_order': False{run}'shape': (3,){run}x}}";
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Refusal(Npy1(bad, new byte[24]));
        // Checked here already: the 60 KB headers below would run for hours under a backtracking parser.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"the 1.3 KB header took {sw.Elapsed}");
        string good = $"{{{run}'descr'{run}:{run}'<f8'{run},{run}'fortran_order':False,{run}'shape':({run}3{run},{run}){run}}}";
        Assert.Equal([3], Npy.Parse(NpyRaw(1, Encoding.ASCII.GetBytes(good + "\n"), new byte[24]), "t", "t.npy").Shape);
        string huge = $"{{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }}{new string(' ', 60_000)}\n";
        Assert.Equal([3], Npy.Parse(NpyRaw(1, Encoding.ASCII.GetBytes(huge), new byte[24]), "t", "t.npy").Shape);
        string hugeBad = $"{{'descr': '<f8'{new string(' ', 20_000)}'fortran_order': False{new string('\t', 20_000)}"
            + $"'shape': (3,){new string(' ', 20_000)}x}}";
        Refusal(NpyRaw(2, Encoding.ASCII.GetBytes(hugeBad + "\n"), new byte[24]));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"took {sw.Elapsed}");
    }

    [Theory]
    [InlineData(2, 0x7FFFFFFFu)]
    [InlineData(2, 0x7FFFFFF4u)]   // 12 + this = 2^31: the int sum wrapped negative and slipped past the bounds check
    [InlineData(2, 0x80000000u)]
    [InlineData(2, 0xFFFFFFFFu)]
    [InlineData(1, 0xFFFFu)]
    public void RefusesHeaderLengthsPastTheEndOfTheFile(byte major, uint length)
    {
        byte[] header = Encoding.ASCII.GetBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }\n");
        var bytes = NpyRaw(major, header, new byte[8]);
        if (major == 1) BitConverter.GetBytes((ushort)length).CopyTo(bytes, 8);
        else BitConverter.GetBytes(length).CopyTo(bytes, 8);
        Assert.Contains("runs past the end of the file", Refusal(bytes));
    }

    [Fact]
    public void ReadsVersion2HeadersLongerThan64KB()
    {
        string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + new string(' ', 70_000) + "\n";
        byte[] data = [.. BitConverter.GetBytes(1.5f), .. BitConverter.GetBytes(-2f)];
        var t = Npy.Parse(NpyRaw(2, Encoding.ASCII.GetBytes(header), data), "t", "t.npy");
        Assert.Equal([1.5, -2.0], t.Values);
    }
}
