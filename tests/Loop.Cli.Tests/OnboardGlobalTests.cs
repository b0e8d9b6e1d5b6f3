namespace Loop.Cli.Tests;

using Loop.Config;
using Loop.Docker;

/// <summary><c>loop onboard:global</c>: the Loop home's config and container files.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class OnboardGlobalTests : IDisposable
{
    private readonly LoopSandbox _sandbox = new();

    private string ConfigFile => Path.Combine(_sandbox.LoopHome, "config.json");
    private string Dockerfile => Path.Combine(_sandbox.LoopHome, "container", "Dockerfile");
    private string Entrypoint => Path.Combine(_sandbox.LoopHome, "container", "entrypoint.sh");

    [Fact]
    public async Task Writes_the_example_config_privately_and_the_container_files_and_says_what_next()
    {
        var result = await _sandbox.RunAsync("onboard:global");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(ConfigExample.Text, await File.ReadAllTextAsync(ConfigFile));
        Assert.Equal(AgentImageFiles.Dockerfile, await File.ReadAllTextAsync(Dockerfile));
        Assert.Equal(AgentImageFiles.Entrypoint, await File.ReadAllTextAsync(Entrypoint));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ConfigFile));
        Assert.True(File.GetUnixFileMode(Entrypoint).HasFlag(UnixFileMode.UserExecute), "entrypoint.sh must be executable");
        foreach (var file in new[] { ConfigFile, Dockerfile, Entrypoint })
        {
            Assert.Contains($"Wrote {file}", result.Stdout);
        }
        Assert.Contains("loop serve", result.Stdout);
        Assert.Contains("loop daemon:start", result.Stdout);
        Assert.Equal("", result.Stderr);

        // What it wrote is a config Loop itself accepts.
        var loaded = ConfigLoader.Load(new LoopPaths(_sandbox.LoopHome, _sandbox.UserHome), new Dictionary<string, string>());
        Assert.Equal("127.0.0.1:8222", loaded.Config.ApiAddr);
    }

    [Fact]
    public async Task Never_overwrites_without_force_says_what_it_kept_and_overwrites_with_force()
    {
        Directory.CreateDirectory(_sandbox.LoopHome);
        const string mine = "{ \"api_addr\": \"127.0.0.1:9000\", \"anthropic_api_key\": \"sk-mine\" }";
        await File.WriteAllTextAsync(ConfigFile, mine);

        var result = await _sandbox.RunAsync("setup");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(mine, await File.ReadAllTextAsync(ConfigFile));
        Assert.Contains($"Kept {ConfigFile}", result.Stdout);
        Assert.Contains("loop onboard:global --force", result.Stdout);
        Assert.Contains($"Wrote {Dockerfile}", result.Stdout);

        await File.WriteAllTextAsync(Dockerfile, "FROM scratch\n");
        result = await _sandbox.RunAsync("o:global");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(mine, await File.ReadAllTextAsync(ConfigFile));
        Assert.Equal("FROM scratch\n", await File.ReadAllTextAsync(Dockerfile));
        Assert.Contains($"Kept {Dockerfile}", result.Stdout);
        Assert.DoesNotContain("Wrote", result.Stdout);

        result = await _sandbox.RunAsync("onboard:global", "--force");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(ConfigExample.Text, await File.ReadAllTextAsync(ConfigFile));
        Assert.Equal(AgentImageFiles.Dockerfile, await File.ReadAllTextAsync(Dockerfile));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ConfigFile));
        Assert.Contains($"Overwrote {ConfigFile}", result.Stdout);
        Assert.DoesNotContain("Kept", result.Stdout);
    }

    [Fact]
    public async Task Without_LOOP_HOME_it_writes_to_dot_loop_in_the_home_directory()
    {
        _sandbox.Environment["LOOP_HOME"] = null;

        var result = await _sandbox.RunAsync("onboard:global");

        Assert.True(result.ExitCode == 0, result.ToString());
        var config = Path.Combine(_sandbox.UserHome, ".loop", "config.json");
        Assert.Equal(ConfigExample.Text, await File.ReadAllTextAsync(config));
        Assert.True(File.Exists(Path.Combine(_sandbox.UserHome, ".loop", "container", "entrypoint.sh")));
        Assert.Contains($"Wrote {config}", result.Stdout);
    }

    [Fact]
    public async Task Help_describes_the_command_and_an_unknown_option_is_bad_usage()
    {
        var help = await _sandbox.RunAsync("onboard:global", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--force", help.Stdout);
        Assert.False(Directory.Exists(_sandbox.LoopHome), "--help must not write anything");

        var bad = await _sandbox.RunAsync("onboard:global", "--forse");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--forse", bad.Stderr);
        Assert.False(File.Exists(ConfigFile));
    }

    public void Dispose() => _sandbox.Dispose();
}
