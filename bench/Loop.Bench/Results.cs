namespace Loop.Bench;

using System.Text.Json;

/// <summary>One line of the summary table. Values are preformatted with their units.</summary>
public sealed record ResultRow(string Bench, string Metric, string Loop, string Baseline, string Ratio, string Target, string Verdict);

/// <summary>What one benchmark measured: table rows and notes saying exactly what was timed.</summary>
public sealed record BenchResult(string Bench, string Title, IReadOnlyList<ResultRow> Rows, IReadOnlyList<string> Notes)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public void Save(string path)
    {
        File.WriteAllText(path, JsonSerializer.Serialize(this, Json));
        Console.Error.WriteLine($"[bench {Bench}] {Title}");
        foreach (var row in Rows)
        {
            Console.Error.WriteLine($"[bench {Bench}]   {row.Metric}: {row.Loop} (baseline {row.Baseline}, ratio {row.Ratio}; target {row.Target}: {row.Verdict})");
        }
    }

    public static BenchResult Load(string path) => JsonSerializer.Deserialize<BenchResult>(File.ReadAllText(path), Json)
        ?? throw new BenchFailure($"{path} is empty");

    public static string Verdict(bool met) => met ? "met" : "MISSED";
}
