namespace Loop.Cli.Tests;

public sealed class HelpTests : IDisposable
{
    private readonly LoopSandbox _sandbox = new();

    [Fact]
    public async Task The_root_help_lists_the_onboard_and_daemon_commands_with_their_aliases()
    {
        var help = await _sandbox.RunAsync("--help");

        Assert.Equal(0, help.ExitCode);
        Assert.Contains("o:global, onboard:global, setup", help.Stdout);
        Assert.Contains("init, o:local, onboard:local", help.Stdout);
        Assert.Contains("d:start, daemon:start, up", help.Stdout);
        Assert.Contains("d:stop, daemon:stop, down", help.Stdout);
        Assert.Contains("d:status, daemon:status", help.Stdout);
    }

    [Theory]
    [InlineData("onboard:local", "--api-url")]
    [InlineData("daemon:start", "Install Loop as a background service")]
    [InlineData("daemon:stop", "uninstall")]
    [InlineData("daemon:status", "health")]
    public async Task Each_command_has_help(string command, string expected)
    {
        var help = await _sandbox.RunAsync(command, "--help");

        Assert.Equal(0, help.ExitCode);
        Assert.Contains(expected, help.Stdout);
        Assert.Equal("", help.Stderr);
    }

    [Fact]
    public async Task An_unexpected_argument_to_a_daemon_command_is_bad_usage()
    {
        var result = await _sandbox.RunAsync("daemon:status", "--verbose");

        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("loop: ", result.Stderr);
        Assert.Equal("", result.Stdout);
    }

    public void Dispose() => _sandbox.Dispose();
}
