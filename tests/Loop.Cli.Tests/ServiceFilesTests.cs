namespace Loop.Cli.Tests;

using System.Xml.Linq;
using Loop.Cli.ServiceManagers;

public sealed class ServiceFilesTests
{
    private static readonly ServiceDefinition Definition = new(
        ["/opt/my tools/loop", "serve"],
        new Dictionary<string, string> { ["LOOP_HOME"] = "/home/ann/loop home", ["PATH"] = "/usr/bin:/bin" },
        "/home/ann/.loop/logs/daemon.log");

    [Fact]
    public void The_systemd_unit_runs_loop_serve_with_LOOP_HOME_and_starts_with_the_session()
    {
        var unit = ServiceFiles.SystemdUnit(Definition);
        var lines = unit.Split('\n');

        Assert.Contains("[Service]", lines);
        Assert.Contains("ExecStart=\"/opt/my tools/loop\" \"serve\"", lines);
        Assert.Contains("Environment=\"LOOP_HOME=/home/ann/loop home\"", lines);
        Assert.Contains("Environment=\"PATH=/usr/bin:/bin\"", lines);
        Assert.Contains("Restart=on-failure", lines);
        Assert.Contains("[Install]", lines);
        Assert.Contains("WantedBy=default.target", lines);
    }

    [Fact]
    public void The_systemd_unit_escapes_what_systemd_would_expand()
    {
        var unit = ServiceFiles.SystemdUnit(new ServiceDefinition(
            ["/srv/100%/lo\"op", "serve"], new Dictionary<string, string> { ["LOOP_HOME"] = "/srv/$HOME/50%" }, "/x.log"));

        Assert.Contains("ExecStart=\"/srv/100%%/lo\\\"op\" \"serve\"\n", unit);
        // $ is literal in Environment=, but % is still a specifier there.
        Assert.Contains("Environment=\"LOOP_HOME=/srv/$HOME/50%%\"\n", unit);
    }

    [Fact]
    public void Without_LOOP_HOME_the_unit_sets_no_environment()
    {
        var unit = ServiceFiles.SystemdUnit(new ServiceDefinition(["/usr/local/bin/loop", "serve"], new Dictionary<string, string>(), "/x.log"));
        Assert.DoesNotContain("Environment=", unit);
        Assert.Contains("ExecStart=\"/usr/local/bin/loop\" \"serve\"\n", unit);
    }

    [Fact]
    public void The_launchd_plist_is_a_valid_plist_running_loop_serve_at_load()
    {
        var plist = ServiceFiles.LaunchdPlist(Definition with { Command = ["/opt/a&b/loop", "serve"] });

        var document = XDocument.Parse(plist);
        Assert.Equal("plist", document.Root!.Name.LocalName);
        var dict = document.Root.Element("dict")!;
        var values = Pairs(dict);
        Assert.Equal("dev.loop.daemon", values["Label"].Value);
        Assert.Equal(["/opt/a&b/loop", "serve"], values["ProgramArguments"].Elements("string").Select(e => e.Value));
        var environment = Pairs(values["EnvironmentVariables"]);
        Assert.Equal("/home/ann/loop home", environment["LOOP_HOME"].Value);
        Assert.Equal("true", values["RunAtLoad"].Name.LocalName);
        Assert.Equal("/home/ann/.loop/logs/daemon.log", values["StandardErrorPath"].Value);
        Assert.Equal("/home/ann/.loop/logs/daemon.log", values["StandardOutPath"].Value);
    }

    // A plist dict alternates <key> and value elements.
    private static Dictionary<string, XElement> Pairs(XElement dict)
    {
        var elements = dict.Elements().ToList();
        return Enumerable.Range(0, elements.Count / 2).ToDictionary(i => elements[2 * i].Value, i => elements[2 * i + 1]);
    }
}
