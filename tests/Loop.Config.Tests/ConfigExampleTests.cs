using System.Text.Json;

namespace Loop.Config.Tests;

public sealed class ConfigExampleTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void The_example_config_loads_to_exactly_the_defaults_without_warnings()
    {
        var paths = new LoopPaths(_temp.Combine("home"), _temp.Combine("user"));
        _temp.Write("home/config.json", ConfigExample.Text);

        var (config, warnings) = ConfigLoader.Load(paths, new Dictionary<string, string>());

        Assert.Empty(warnings);
        Assert.Equal(Canonical(LoopConfig.Defaults(paths)), Canonical(config));
    }

    [Fact]
    public void The_example_config_documents_every_key()
    {
        foreach (var key in ConfigKeys.All)
        {
            Assert.Contains($"\"{key}\":", ConfigExample.Text);
        }
    }

    // Records compare lists by reference, so compare their JSON form instead.
    private static string Canonical(LoopConfig config) => JsonSerializer.Serialize(config);
}
