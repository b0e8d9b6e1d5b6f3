namespace Loop.Cli.Tests;

using System.Text.Json.Nodes;

/// <summary><c>loop onboard:local</c>: the project's .mcp.json.</summary>
public sealed class OnboardLocalTests : IDisposable
{
    private readonly LoopSandbox _sandbox = new();

    private static JsonObject ReadJson(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    private static string[] Args(JsonObject server) => server["args"]!.AsArray().Select(a => (string)a!).ToArray();

    [Fact]
    public async Task Creates_mcp_json_with_the_loop_server_for_the_project()
    {
        var project = _sandbox.NewProjectDir();

        var result = await _sandbox.RunAsync("onboard:local", "--dir", project, "--api-url", "http://127.0.0.1:9999");

        Assert.True(result.ExitCode == 0, result.ToString());
        var file = Path.Combine(project, ".mcp.json");
        var loop = ReadJson(file)["mcpServers"]!["loop"]!.AsObject();
        // Run through `dotnet loop.dll`, the path of dotnet would not start Loop: the entry names `loop`.
        Assert.Equal("loop", (string)loop["command"]!);
        Assert.Equal(["mcp", "--dir", project, "--api-url", "http://127.0.0.1:9999"], Args(loop));
        // The sandbox's Loop home is not ~/.loop: loop mcp must find that daemon's local token.
        Assert.Equal(_sandbox.LoopHome, (string?)loop["env"]?["LOOP_HOME"]);
        Assert.Contains($"Created {file}", result.Stdout);
    }

    [Fact]
    public async Task Defaults_to_the_current_directory_and_the_configured_api_address()
    {
        var project = _sandbox.NewProjectDir();
        Directory.CreateDirectory(_sandbox.LoopHome);
        await File.WriteAllTextAsync(Path.Combine(_sandbox.LoopHome, "config.json"),
            "{ \"api_addr\": \"0.0.0.0:8333\", \"anthropic_api_key\": \"sk-ant-never-in-mcp-json\" }");

        var result = await _sandbox.RunInAsync(project, "init");

        Assert.True(result.ExitCode == 0, result.ToString());
        var text = await File.ReadAllTextAsync(Path.Combine(project, ".mcp.json"));
        var loop = JsonNode.Parse(text)!["mcpServers"]!["loop"]!.AsObject();
        // A wildcard listen address is reached on loopback.
        Assert.Equal(["mcp", "--dir", project, "--api-url", "http://127.0.0.1:8333"], Args(loop));
        Assert.DoesNotContain("sk-ant", text);
        Assert.Contains("nothing answers at http://127.0.0.1:8333", result.Stdout);
    }

    [Fact]
    public async Task Keeps_other_servers_and_keys_and_running_twice_leaves_one_updated_loop_entry()
    {
        var project = _sandbox.NewProjectDir();
        var file = Path.Combine(project, ".mcp.json");
        var other = new JsonObject { ["command"] = "npx", ["args"] = new JsonArray("-y", "@acme/mcp"), ["env"] = new JsonObject { ["LEVEL"] = "2" } };
        var original = new JsonObject
        {
            ["mcpServers"] = new JsonObject { ["acme"] = other.DeepClone(), ["loop"] = new JsonObject { ["command"] = "old-loop" } },
            ["x-team-notes"] = new JsonObject { ["owner"] = "alice" },
        };
        await File.WriteAllTextAsync(file, original.ToJsonString());

        var first = await _sandbox.RunAsync("o:local", "--dir", project, "--api-url", "http://127.0.0.1:1111");
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains($"Updated the loop MCP server in {file}", first.Stdout);

        var second = await _sandbox.RunAsync("onboard:local", "--dir", project, "--api-url", "http://127.0.0.1:2222/");
        Assert.True(second.ExitCode == 0, second.ToString());
        var third = await _sandbox.RunAsync("onboard:local", "--dir", project, "--api-url", "http://127.0.0.1:2222");
        Assert.Contains("already up to date", third.Stdout);

        var json = ReadJson(file);
        Assert.Equal(["mcpServers", "x-team-notes"], json.Select(p => p.Key));
        Assert.True(JsonNode.DeepEquals(original["x-team-notes"], json["x-team-notes"]));
        var servers = json["mcpServers"]!.AsObject();
        Assert.Equal(["acme", "loop"], servers.Select(p => p.Key));
        Assert.True(JsonNode.DeepEquals(other, servers["acme"]), servers["acme"]!.ToJsonString());
        Assert.Equal(["mcp", "--dir", project, "--api-url", "http://127.0.0.1:2222"], Args(servers["loop"]!.AsObject()));
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(file), "\"loop\":"));
    }

    [Fact]
    public async Task A_malformed_mcp_json_is_an_error_naming_file_line_and_column_and_is_left_untouched()
    {
        var project = _sandbox.NewProjectDir();
        var file = Path.Combine(project, ".mcp.json");
        const string broken = "{\n  \"mcpServers\": {\n    \"acme\": { \"command\": \"npx\" },,\n  }\n}\n";
        await File.WriteAllTextAsync(file, broken);

        var result = await _sandbox.RunAsync("onboard:local", "--dir", project, "--api-url", "http://127.0.0.1:9999");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:3:", result.Stderr);
        Assert.DoesNotContain("   at ", result.Output);
        Assert.Equal(broken, await File.ReadAllTextAsync(file));
        Assert.Equal([".mcp.json"], Directory.GetFiles(project).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_duplicate_key_is_an_error_naming_the_key_and_the_file_is_left_untouched()
    {
        var project = _sandbox.NewProjectDir();
        var file = Path.Combine(project, ".mcp.json");
        const string duplicate = "{\n  \"mcpServers\": {},\n  \"mcpServers\": {}\n}\n";
        await File.WriteAllTextAsync(file, duplicate);

        var result = await _sandbox.RunAsync("onboard:local", "--dir", project, "--api-url", "http://127.0.0.1:9999");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"loop: {file}: not valid JSON: Duplicate property 'mcpServers'", result.Stderr);
        Assert.DoesNotContain("   at ", result.Output);
        Assert.Equal(duplicate, await File.ReadAllTextAsync(file));
    }

    [Fact]
    public async Task Mcp_servers_that_is_not_an_object_is_refused()
    {
        var project = _sandbox.NewProjectDir();
        var file = Path.Combine(project, ".mcp.json");
        await File.WriteAllTextAsync(file, "{ \"mcpServers\": [] }");

        var result = await _sandbox.RunAsync("onboard:local", "--dir", project, "--api-url", "http://127.0.0.1:9999");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(file, result.Stderr);
        Assert.Contains("mcpServers", result.Stderr);
        Assert.Equal("{ \"mcpServers\": [] }", await File.ReadAllTextAsync(file));
    }

    [Theory]
    [InlineData("--api-url", "not a url")]
    [InlineData("--api-url", "ftp://127.0.0.1:1")]
    [InlineData("--api-url", "http://user:secret@127.0.0.1:1")]
    [InlineData("--dir", "/no/such/dir/anywhere")]
    public async Task Bad_options_are_bad_usage(string option, string value)
    {
        var project = _sandbox.NewProjectDir();
        string[] args = option == "--dir" ? ["onboard:local", option, value] : ["onboard:local", "--dir", project, option, value];

        var result = await _sandbox.RunAsync(args);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(option, result.Stderr);
        Assert.False(File.Exists(Path.Combine(project, ".mcp.json")));
    }

    public void Dispose() => _sandbox.Dispose();
}
