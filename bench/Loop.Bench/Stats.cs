namespace Loop.Bench;

using System.Globalization;

/// <summary>Summary statistics over samples in milliseconds (nearest-rank percentiles).</summary>
public sealed record Stats(int Count, double P50, double P90, double P99, double Max, double Mean)
{
    public static Stats Of(IReadOnlyCollection<double> samples)
    {
        if (samples.Count == 0)
        {
            throw new BenchFailure("no samples");
        }
        var sorted = samples.Order().ToArray();
        return new Stats(sorted.Length, Rank(sorted, 0.50), Rank(sorted, 0.90), Rank(sorted, 0.99), sorted[^1], sorted.Average());
    }

    public static double Median(IReadOnlyCollection<double> samples) => Of(samples).P50;

    private static double Rank(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public static string Ms(double ms) => ms < 10
        ? ms.ToString("0.000", CultureInfo.InvariantCulture) + " ms"
        : ms.ToString("0.0", CultureInfo.InvariantCulture) + " ms";

    public static string Num(double value, string format = "0") => value.ToString(format, CultureInfo.InvariantCulture);
}
