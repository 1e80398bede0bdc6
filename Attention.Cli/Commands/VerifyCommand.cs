using System.CommandLine;
using System.Globalization;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary><c>verify PACK [--actual NAME] [--rtol R]</c>.</summary>
public static class VerifyCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var packArg = new Argument<string>("pack") { Description = "A folder of case folders (or one case folder)." };
        var actualOpt = new Option<string?>("--actual")
        {
            Description = "Hold the outputs another backend saved as NAME in each case folder against the oracle, instead of checking the oracle against expected.safetensors.",
        };
        var rtolOpt = new Option<double?>("--rtol") { Description = TolerancesHelp.RTol };
        var atolOpt = new Option<double?>("--atol") { Description = TolerancesHelp.ATol };
        var allowMissingOpt = new Option<bool>("--allow-missing")
        {
            Description = "With --actual: tensors the backend did not save are listed as unchecked instead of failing the case.",
        };
        var threadsOpt = ThreadsOption.Create();
        var conventionsOpt = ConventionsOption.Create();
        var jsonOpt = new Option<bool>("--json") { Description = "Print one JSON document (for CI) instead of the table." };
        var cmd = new Command("verify", "Run the oracle on every case of a pack and compare; one row per case. Exit 1 if any case disagrees, 2 if any case is malformed.")
        {
            packArg, actualOpt, rtolOpt, atolOpt, allowMissingOpt, threadsOpt, conventionsOpt, jsonOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            double? rtol = ToleranceOptions.Validate(p.GetValue(rtolOpt), "--rtol");
            double? atol = ToleranceOptions.Validate(p.GetValue(atolOpt), "--atol");
            var cases = CaseFolder.ListPack(p.GetValue(packArg)!);
            string? actualName = p.GetValue(actualOpt);
            bool allowMissing = p.GetValue(allowMissingOpt);
            if (allowMissing && actualName is null) throw new ArgumentException("--allow-missing needs --actual.");
            bool json = p.GetValue(jsonOpt);
            var rows = new List<Row>();
            if (!json) io.Out.WriteLine($"{"case",-34} {"module",-18} {"tensors",7}  {"max err/tol",11}  {"worst tensor",-22} result");
            int failed = 0, broken = 0;
            foreach (var path in cases)
            {
                var row = VerifyCase(path, actualName, rtol, p.GetValue(threadsOpt), ConventionsOption.Parse(p.GetValue(conventionsOpt)),
                    atol, allowMissing);
                rows.Add(row);
                if (row.Error is not null) broken++;
                else if (!row.Passed) failed++;
                if (json)
                {
                    if (row.Error is not null) io.Err.WriteLine($"attention-ref: {row.Case}: {row.Error}");
                    continue;
                }
                io.Out.WriteLine(row.Format());
                if (row.Error is not null) io.Err.WriteLine($"attention-ref: {row.Case}: {row.Error}");
                if (row.Unchecked.Count > 0) io.Out.WriteLine($"    unchecked (not in {actualName}): {string.Join(", ", row.Unchecked)}");
                if (row.Extra.Count > 0) io.Out.WriteLine($"    not expected (ignored): {string.Join(", ", row.Extra)}");
                foreach (var c in row.Comparisons.Where(c => !c.Passed)) io.Out.WriteLine($"    {c}");
                if (row.FirstDivergence is not null) io.Out.WriteLine($"    {DumpComparer.Describe(row.FirstDivergence)}");
            }
            // A sub-folder without a case.json is not a case: say which were skipped, so a misnamed file is noticed.
            var skipped = CaseFolder.SkippedFolders(p.GetValue(packArg)!);
            if (skipped.Count > 0)
                io.Err.WriteLine($"attention-ref: skipped {skipped.Count} sub-folder(s) without a {CaseFolder.ConfigFile}: {string.Join(", ", skipped)}");
            if (json) io.Out.WriteLine(VerifyJson.Write(rows));
            else
                io.Out.WriteLine($"{cases.Count - failed - broken} of {cases.Count} cases pass" +
                                 (failed > 0 ? $", {failed} disagree" : "") + (broken > 0 ? $", {broken} could not run" : ""));
            return broken > 0 ? ExitCodes.BadInput : failed > 0 ? ExitCodes.Mismatch : ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>One row of the table.</summary>
    public sealed record Row(string Case, string Module, List<TensorComparison> Comparisons, string? Error)
    {
        /// <summary>With --allow-missing: the expected tensors the backend did not save.</summary>
        public List<string> Unchecked { get; init; } = [];

        /// <summary>Tensors the backend saved that the oracle does not produce.</summary>
        public List<string> Extra { get; init; } = [];

        /// <summary>Network cases: the module dump's comparisons (empty when the case has no expected dump).</summary>
        public List<TensorComparison> Dump { get; init; } = [];

        /// <summary>Network cases: the first module in forward order whose output disagrees, or null.</summary>
        public TensorComparison? FirstDivergence { get; init; }

        /// <summary>True when the case ran and every tensor (and every dumped module output) agreed.</summary>
        public bool Passed => Error is null && Comparisons.Count > 0 && Comparisons.All(c => c.Passed) && Dump.All(c => c.Passed);

        /// <summary>The row as text.</summary>
        public string Format()
        {
            if (Error is not null) return $"{Case,-34} {Module,-18} {"",7}  {"",11}  {"",-22} ERROR {Error}";
            var worst = Comparisons.MaxBy(Ratio)!;
            string ratio = Ratio(worst) is var r && double.IsFinite(r) ? r.ToString("0.00E+00", CultureInfo.InvariantCulture) : "inf";
            return $"{Case,-34} {Module,-18} {Comparisons.Count,7}  {ratio,11}  {worst.Name,-22} {(Passed ? "PASS" : "FAIL")}";
        }

        private static double Ratio(TensorComparison c) => c.Problem is not null ? double.PositiveInfinity : c.WorstRatio;
    }

    /// <summary>Runs the oracle on one case and compares it with expected.safetensors (or the named actual file).</summary>
    public static Row VerifyCase(string path, string? actualName, double? rtol, int? threads = null,
        Reference.Layers.GradConventions conventions = Reference.Layers.GradConventions.Exact, double? atol = null,
        bool allowMissing = false)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path));
        string module = "?";
        try
        {
            var folder = CaseFolder.Open(path);
            module = folder.Module.Name;
            var dump = new TensorSet<double>("the oracle's module dump");
            var options = new RunOptions
            {
                ModuleOutput = folder.IsNetwork ? (n, v) => dump.Set(n, v) : null, Conventions = conventions,
            };
            var oracle = ThreadsOption.Apply(threads, () => folder.Run<double>(options));
            List<StoredTensor> reference, candidate;
            if (actualName is null)
            {
                reference = folder.ReadExpected() ?? throw new CaseFormatException($"case '{path}' has no {CaseFolder.ExpectedFile}.");
                candidate = ToStored(oracle);
            }
            else
            {
                reference = ToStored(oracle);
                candidate = TensorFiles.Read(Path.Combine(path, actualName));
            }
            // Every expected tensor must be present (a backend that saved x.grad as "input.grad" fails, naming it);
            // --allow-missing lists the absent ones as unchecked instead. y is never optional.
            var names = candidate.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            var expectedNames = reference.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            var judged = allowMissing ? reference.Where(e => names.Contains(e.Name) || e.Name is "y").ToList() : reference;
            var uncheckedNames = reference.Where(e => !judged.Contains(e)).Select(e => e.Name).ToList();
            var extra = candidate.Where(t => !expectedNames.Contains(t.Name)).Select(t => t.Name).ToList();
            var comparisons = TensorComparer.CompareSets(judged, candidate, rtol, atol, actualName ?? "the oracle's outputs");
            if (actualName is null && folder.ReadExpectedDump() is var (expectedDump, order))
            {
                var dumpResults = TensorComparer.CompareSets(expectedDump, ToStored(dump), rtol, atol, "the oracle's module dump");
                return new Row(name, module, comparisons, null)
                {
                    Dump = dumpResults, FirstDivergence = DumpComparer.FirstDivergence(dumpResults, order),
                    Unchecked = uncheckedNames, Extra = extra,
                };
            }
            return new Row(name, module, comparisons, null) { Unchecked = uncheckedNames, Extra = extra };
        }
        catch (Exception e) when (CliIO.IsBadInput(e))
        {
            return new Row(name, module, [], e.Message);
        }
    }

    private static List<StoredTensor> ToStored(TensorSet<double> set) =>
        set.Select(kv => new StoredTensor(kv.Key, StoredDType.F64, kv.Value.ShapeArray(), kv.Value.Data)).ToList();
}

/// <summary>verify's --json document: one object per case with its verdict, worst tensor and first divergence.</summary>
public static class VerifyJson
{
    /// <summary>The document.</summary>
    public static string Write(IReadOnlyList<VerifyCommand.Row> rows)
    {
        using var stream = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteBoolean("passed", rows.All(r => r.Passed));
            w.WriteNumber("cases", rows.Count);
            w.WriteNumber("failed", rows.Count(r => r.Error is null && !r.Passed));
            w.WriteNumber("broken", rows.Count(r => r.Error is not null));
            w.WriteStartArray("results");
            foreach (var r in rows)
            {
                w.WriteStartObject();
                w.WriteString("case", r.Case);
                w.WriteString("module", r.Module);
                w.WriteBoolean("passed", r.Passed);
                if (r.Error is not null) w.WriteString("error", r.Error);
                w.WriteStartArray("failing_tensors");
                foreach (var c in r.Comparisons.Concat(r.Dump).Where(c => !c.Passed)) w.WriteStringValue(c.Name);
                w.WriteEndArray();
                if (r.FirstDivergence is { } d) w.WriteString("first_divergence", d.Name); else w.WriteNull("first_divergence");
                w.WriteStartArray("unchecked");
                foreach (var u in r.Unchecked) w.WriteStringValue(u);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
