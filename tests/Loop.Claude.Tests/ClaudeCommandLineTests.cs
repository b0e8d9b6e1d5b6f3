namespace Loop.Claude.Tests;

using Xunit;

public sealed class ClaudeCommandLineTests
{
    [Fact]
    public void New_session_without_model_has_the_headless_flags_and_the_prompt_last()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "/run/loop/mcp.json", "hello there"));

        Assert.Equal(
            ["claude", "--mcp-config", "/run/loop/mcp.json", "--print", "--verbose", "--output-format", "stream-json",
             "--dangerously-skip-permissions", "hello there"],
            argv);
    }

    [Fact]
    public void Model_and_resume_are_placed_where_the_contract_says()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions(
            "/usr/local/bin/claude", "mcp.json", "next step", Model: "opus", ResumeSessionId: "0b9a8f0e-1c7e-4c55-9d7e-3f8a2b1c0d9e"));

        Assert.Equal(
            ["/usr/local/bin/claude", "--mcp-config", "mcp.json", "--model", "opus", "--print", "--verbose", "--output-format",
             "stream-json", "--dangerously-skip-permissions", "--resume", "0b9a8f0e-1c7e-4c55-9d7e-3f8a2b1c0d9e", "next step"],
            argv);
    }

    [Fact]
    public void Blank_model_and_session_are_left_out()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json", "p", Model: " ", ResumeSessionId: ""));

        Assert.DoesNotContain("--model", argv);
        Assert.DoesNotContain("--resume", argv);
    }

    [Fact]
    public void A_prompt_that_looks_like_an_option_follows_an_end_of_options_marker()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json", "- fix the build\n- run tests"));

        Assert.Equal(["--", "- fix the build\n- run tests"], argv.TakeLast(2));
    }

    [Fact]
    public void A_multi_line_prompt_stays_one_argument()
    {
        var prompt = "line one\nline \"two\" with 'quotes' and $HOME";
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json", prompt));

        Assert.Equal(prompt, argv[^1]);
    }
}
