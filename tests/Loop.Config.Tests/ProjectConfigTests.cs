namespace Loop.Config.Tests;

public sealed class ProjectConfigTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly string _project;

    public ProjectConfigTests()
    {
        _project = _temp.Mkdir("project");
    }

    public void Dispose() => _temp.Dispose();

    private string ProjectFile => Path.Combine(_project, ".loop", "config.json");

    private void WriteProjectConfig(string json) => _temp.Write("project/.loop/config.json", json);

    private static LoopConfig Global(Func<LoopConfig, LoopConfig>? change = null)
    {
        var config = new LoopConfig
        {
            DbPath = "/tmp/loop.db",
            Mounts = ["~/.claude:~/.claude"],
            ClaudeModel = "global-model",
            McpServers = new Dictionary<string, McpServerConfig>
            {
                ["shared"] = new("global-cmd", [], new Dictionary<string, string>()),
                ["global-only"] = new("g", ["--x"], new Dictionary<string, string>()),
            },
        };
        return change is null ? config : change(config);
    }

    [Fact]
    public void A_project_without_config_gets_the_global_settings()
    {
        var settings = EffectiveSettings.For(Global(), _project);

        Assert.Equal(_project, settings.ProjectDir);
        Assert.Equal([new ConfiguredMount("~/.claude:~/.claude", MountOrigin.Global)], settings.Mounts);
        Assert.Equal("global-model", settings.ClaudeModel);
        Assert.Equal(["global-only", "shared"], settings.McpServers.Keys.Order());
        Assert.Empty(settings.Warnings);
    }

    [Fact]
    public void Project_mounts_are_appended_after_global_mounts_and_remember_their_origin()
    {
        WriteProjectConfig("""
            {
              // comments and trailing commas work here too
              "mounts": ["./data:/app/data", "./logs:/app/logs:ro",],
            }
            """);

        var settings = EffectiveSettings.For(Global(), _project);

        Assert.Equal(
            [
                new ConfiguredMount("~/.claude:~/.claude", MountOrigin.Global),
                new ConfiguredMount("./data:/app/data", MountOrigin.Project),
                new ConfiguredMount("./logs:/app/logs:ro", MountOrigin.Project),
            ],
            settings.Mounts);
        Assert.Empty(settings.Warnings);
    }

    [Fact]
    public void Project_mcp_servers_merge_with_the_project_winning_on_the_same_name()
    {
        WriteProjectConfig("""
            {
              "mcp": { "servers": {
                "shared": { "command": "project-cmd", "args": ["-y"], "env": { "K": "v" } },
                "project-db": { "command": "npx" }
              } }
            }
            """);

        var servers = EffectiveSettings.For(Global(), _project).McpServers;

        Assert.Equal(["global-only", "project-db", "shared"], servers.Keys.Order());
        Assert.Equal("project-cmd", servers["shared"].Command);
        Assert.Equal(["-y"], servers["shared"].Args);
        Assert.Equal("v", servers["shared"].Env["K"]);
        Assert.Equal("g", servers["global-only"].Command);
        Assert.Equal("npx", servers["project-db"].Command);
    }

    [Fact]
    public void The_project_may_override_the_model()
    {
        WriteProjectConfig("""{ "claude_model": "project-model" }""");

        Assert.Equal("project-model", EffectiveSettings.For(Global(), _project).ClaudeModel);
    }

    [Fact]
    public void The_global_system_prompt_comes_first_then_the_projects_own_file_inside_it()
    {
        var global = _temp.Write("system.md", "Answer in French.\n");
        _temp.Write("project/docs/agent.md", "This project uses tabs.");
        WriteProjectConfig("""{ "system_prompt_file": "docs/agent.md" }""");

        var settings = EffectiveSettings.For(Global(c => c with { SystemPromptFile = global }), _project);

        Assert.Equal("Answer in French.\n\nThis project uses tabs.", settings.SystemPrompt);
        Assert.Empty(settings.Warnings);
        Assert.Null(EffectiveSettings.For(Global(), _temp.Mkdir("bare")).SystemPrompt);
    }

    [Fact]
    public void A_project_system_prompt_file_that_leads_out_of_the_project_or_is_missing_is_an_error()
    {
        var secret = _temp.Write("secret.txt", "TOP SECRET");
        File.CreateSymbolicLink(Path.Combine(_project, "agent.md"), secret);
        WriteProjectConfig("""{ "system_prompt_file": "agent.md" }""");

        var outside = Assert.Throws<ConfigException>(() => EffectiveSettings.For(Global(), _project));
        Assert.Equal($"system_prompt_file agent.md leads outside the project directory {_project}", outside.Message);

        var missing = Assert.Throws<ConfigException>(() => EffectiveSettings.For(Global(c => c with { SystemPromptFile = "/nonexistent/system.md" }), _temp.Mkdir("other")));
        Assert.Equal("system_prompt_file /nonexistent/system.md does not exist", missing.Message);
    }

    [Fact]
    public void Other_global_keys_are_refused_with_a_warning_and_ignored()
    {
        WriteProjectConfig("""
            {
              "api_addr": "0.0.0.0:1",
              "discord_token": "steal",
              "allowed_mount_roots": ["/"],
              "claude_model": "m",
              "colour": "blue"
            }
            """);

        var project = ProjectConfigLoader.Load(_project);

        Assert.Equal(ProjectFile, project.File);
        Assert.Equal("m", project.ClaudeModel);
        Assert.Equal(4, project.Warnings.Count);
        Assert.StartsWith($"project config {ProjectFile} may not set 'api_addr' (ignored)", project.Warnings[0]);
        Assert.StartsWith($"project config {ProjectFile} may not set 'discord_token' (ignored)", project.Warnings[1]);
        Assert.StartsWith($"project config {ProjectFile} may not set 'allowed_mount_roots' (ignored)", project.Warnings[2]);
        Assert.Equal($"unknown key 'colour' in {ProjectFile} (ignored)", project.Warnings[3]);
        Assert.Equal(project.Warnings, EffectiveSettings.For(Global(), _project).Warnings);
    }

    [Fact]
    public void A_syntax_error_in_the_project_config_names_its_file_line_and_column()
    {
        WriteProjectConfig("{\n  \"mounts\": [\"a:b\" \"c:d\"]\n}");

        var error = Assert.Throws<ConfigException>(() => ProjectConfigLoader.Load(_project));

        Assert.StartsWith($"{ProjectFile}:2:20: ", error.Message);
    }
}
