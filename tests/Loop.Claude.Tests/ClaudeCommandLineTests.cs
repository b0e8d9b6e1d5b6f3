namespace Loop.Claude.Tests;

using Xunit;

public sealed class ClaudeCommandLineTests
{
    [Fact]
    public void New_session_without_model_has_the_headless_flags_and_no_prompt()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "/run/loop/mcp.json"));

        Assert.Equal(
            ["claude", "--mcp-config", "/run/loop/mcp.json", "--print", "--verbose", "--output-format", "stream-json",
             "--dangerously-skip-permissions"],
            argv);
    }

    [Fact]
    public void Model_and_resume_are_placed_where_the_contract_says()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions(
            "/usr/local/bin/claude", "mcp.json", Model: "opus", ResumeSessionId: "0b9a8f0e-1c7e-4c55-9d7e-3f8a2b1c0d9e"));

        Assert.Equal(
            ["/usr/local/bin/claude", "--mcp-config", "mcp.json", "--model", "opus", "--print", "--verbose", "--output-format",
             "stream-json", "--dangerously-skip-permissions", "--resume", "0b9a8f0e-1c7e-4c55-9d7e-3f8a2b1c0d9e"],
            argv);
    }

    [Fact]
    public void The_system_prompt_files_text_is_appended_after_the_headless_flags()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json", AppendSystemPrompt: "Answer in French.\nBe brief."));

        Assert.Equal(["--append-system-prompt", "Answer in French.\nBe brief."], argv.TakeLast(2));
        Assert.DoesNotContain("--append-system-prompt", ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json", AppendSystemPrompt: " ")));
    }

    [Fact]
    public void What_the_budgets_leave_is_passed_as_max_budget_usd_in_invariant_digits()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json", MaxBudgetUsd: 2.7458000m));

        Assert.Equal(["--max-budget-usd", "2.7458"], argv.TakeLast(2));
        Assert.DoesNotContain("--max-budget-usd", ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json")));
    }

    [Fact]
    public void Blank_model_and_session_are_left_out()
    {
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json", Model: " ", ResumeSessionId: ""));

        Assert.DoesNotContain("--model", argv);
        Assert.DoesNotContain("--resume", argv);
    }

    [Fact]
    public void Mcp_config_never_comes_last_so_it_cannot_swallow_what_follows()
    {
        // --mcp-config takes every following argument up to the next option.
        var argv = ClaudeCommandLine.Build(new ClaudeCommandOptions("claude", "m.json"));

        Assert.StartsWith("--", argv[argv.ToList().IndexOf("m.json") + 1], StringComparison.Ordinal);
    }
}
