# Renders one BOSH job template the way a director or bosh create-env does:
# the job's properties are the spec's properties, each taken from the manifest
# properties when set there and from the spec's default otherwise (nil when it
# has neither); templates read them with p, if_p and spec.
#
#   ruby render.rb JOB_SPEC TEMPLATE PROPERTIES_JSON
#
# Prints the rendered template; exits non-zero with the template's error.
require 'erb'
require 'json'
require 'ostruct'
require 'yaml'

class JobTemplateContext
  # Raised by p for a property that is neither set nor defaulted.
  class UnknownProperty < StandardError; end

  # Returned by if_p when a property is missing: runs the alternative.
  class Otherwise
    def initialize(context)
      @context = context
    end

    def else
      yield
    end

    def else_if_p(*names, &block)
      @context.if_p(*names, &block)
    end
  end

  # Returned by if_p when its block ran: the alternatives do nothing.
  class Done
    def else; end

    def else_if_p(*_names)
      self
    end
  end

  attr_reader :spec

  def initialize(job_spec, manifest_properties, instance)
    @properties = {}
    (job_spec['properties'] || {}).each do |name, definition|
      value = dig(manifest_properties, name)
      value = (definition || {})['default'] if value.nil?
      store(@properties, name, value)
    end
    @spec = OpenStruct.new(instance.merge('properties' => @properties))
  end

  def p(*args)
    names = Array(args[0])
    names.each do |name|
      value = dig(@properties, name)
      return value unless value.nil?
    end
    return args[1] if args.length == 2

    raise UnknownProperty, "Can't find property '#{names.join("', or '")}'"
  end

  def if_p(*names)
    values = names.map do |name|
      value = dig(@properties, name)
      return Otherwise.new(self) if value.nil?

      value
    end
    yield(*values)
    Done.new
  end

  def render(template_path)
    erb = ERB.new(File.read(template_path), trim_mode: '-')
    erb.filename = template_path
    erb.result(binding)
  end

  private

  def dig(hash, dotted_name)
    dotted_name.split('.').reduce(hash) do |node, key|
      return nil unless node.is_a?(Hash)

      node[key]
    end
  end

  def store(hash, dotted_name, value)
    *parents, leaf = dotted_name.split('.')
    node = parents.reduce(hash) { |h, key| h[key] ||= {} }
    node[leaf] = value
  end
end

spec_path, template_path, properties_path = ARGV
abort 'usage: render.rb JOB_SPEC TEMPLATE PROPERTIES_JSON' unless properties_path

job_spec = YAML.safe_load(File.read(spec_path))
instance = {
  'name' => job_spec['name'], 'index' => 0, 'id' => 'uuid-0', 'az' => 'z1',
  'deployment' => 'bosh', 'address' => '10.0.0.6', 'ip' => '10.0.0.6', 'bootstrap' => true
}
context = JobTemplateContext.new(job_spec, JSON.parse(File.read(properties_path)), instance)
begin
  print context.render(template_path)
rescue StandardError => e
  warn "rendering #{File.basename(template_path)}: #{e.message}"
  exit 1
end
